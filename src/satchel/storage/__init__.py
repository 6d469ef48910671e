"""Blob storage backends, chosen by the ``storage`` setting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from satchel.storage.base import BlobStat, BlobStore, BlobWriter
from satchel.storage.local import LocalBlobStore


def _local(argument: str, data_dir: Path) -> BlobStore:
    return LocalBlobStore(Path(argument) if argument else data_dir / "store")


BACKENDS: dict[str, Callable[[str, Path], BlobStore]] = {"local": _local}


def open_store(spec: str, data_dir: Path) -> BlobStore:
    scheme, _, argument = spec.partition(":")
    factory = BACKENDS.get(scheme)
    if factory is None:
        raise ValueError(f"unknown storage backend {scheme!r}; known: {', '.join(BACKENDS)}")
    return factory(argument, data_dir)


__all__ = ["BlobStat", "BlobStore", "BlobWriter", "open_store"]

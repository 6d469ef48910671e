"""Blob storage backends, chosen by the ``storage`` setting (``scheme`` or ``scheme:location``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from satchel.storage.base import BlobStat, BlobStore, BlobWriter
from satchel.storage.local import LocalBlobStore

StoreFactory = Callable[[str, Path], BlobStore]


def _local(location: str, data_dir: Path) -> BlobStore:
    if not location:
        return LocalBlobStore(data_dir / "store")
    path = Path(location)
    if not path.is_absolute():
        # Relative to what? The working directory differs between serve, CLI and service units.
        raise ValueError(
            f"local storage needs an absolute path (local:/srv/satchel), not {location!r}"
        )
    return LocalBlobStore(path)


# scheme -> factory(location after the first ":", data_dir)
BACKENDS: dict[str, StoreFactory] = {"local": _local}


def open_store(spec: str, data_dir: Path) -> BlobStore:
    scheme, _, location = spec.strip().partition(":")
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown storage backend {scheme!r} (known: {known})")
    return factory(location, data_dir)


__all__ = ["BACKENDS", "BlobStat", "BlobStore", "BlobWriter", "LocalBlobStore", "open_store"]

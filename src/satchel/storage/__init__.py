"""Blob storage backends, chosen by the ``storage`` setting (``scheme`` or ``scheme:location``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from satchel.storage.base import BlobStat, BlobStore, BlobWriter
from satchel.storage.local import LocalBlobStore
from satchel.storage.s3 import S3BlobStore, S3Options, parse_location

StoreFactory = Callable[[str, Path, S3Options], BlobStore]


def _local(location: str, data_dir: Path, s3: S3Options) -> BlobStore:
    if not location:
        return LocalBlobStore(data_dir / "store")
    path = Path(location)
    if not path.is_absolute():
        # Relative to what? The working directory differs between serve, CLI and service units.
        raise ValueError(
            f"local storage needs an absolute path (local:/srv/satchel), not {location!r}"
        )
    return LocalBlobStore(path)


def _s3(location: str, data_dir: Path, s3: S3Options) -> BlobStore:
    bucket, prefix = parse_location(location)
    return S3BlobStore(bucket, prefix, s3)


# scheme -> factory(location after the first ":", data_dir, S3 options)
BACKENDS: dict[str, StoreFactory] = {"local": _local, "s3": _s3}


def open_store(spec: str, data_dir: Path, s3: S3Options | None = None) -> BlobStore:
    scheme, _, location = spec.strip().partition(":")
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown storage backend {scheme!r} (known: {known})")
    return factory(location, data_dir, s3 or S3Options())


__all__ = [
    "BACKENDS",
    "BlobStat",
    "BlobStore",
    "BlobWriter",
    "LocalBlobStore",
    "S3BlobStore",
    "S3Options",
    "open_store",
]

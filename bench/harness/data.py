"""Incompressible test files and prebuilt multipart bodies, generated once into bench/work/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
_BLOCK = 64 * MIB
_PREFIX = 16


def random_file(path: Path, size: int) -> Path:
    """`path` holding `size` incompressible bytes; an existing file of that size is kept."""
    if path.is_file() and path.stat().st_size == size:
        return path
    print(f"generating {path.name} ({size / MIB:,.2f} MiB), once", flush=True)
    partial = path.with_name(path.name + ".partial")
    try:
        _write_random(partial, size)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _write_random(path: Path, size: int) -> None:
    block = memoryview(os.urandom(min(size, _BLOCK)))
    with path.open("wb") as out:
        written, index = 0, 0
        while written < size:
            written += _write_block(out, block, index, size - written)
            index += 1


def _write_block(out: BinaryIO, block: memoryview, index: int, limit: int) -> int:
    """One block: a unique prefix, then the random block rotated by an offset of its own.

    No two blocks are alike, so neither compression nor deduplication can shortcut a transfer,
    and the file is written at disk speed (one os.urandom call of 64 MiB in all).
    """
    shift = (index * 7_919 * 4_096 + index) % len(block)
    prefix = index.to_bytes(8, "big") + os.urandom(_PREFIX - 8)
    remaining = length = min(limit, len(block))
    for piece in (memoryview(prefix), block[shift:], block[:shift]):
        chunk = piece[:remaining]
        out.write(chunk)
        remaining -= len(chunk)
    return length


def multipart_body(source: Path, file_field: str, fields: dict[str, str], boundary: str) -> Path:
    """A multipart/form-data body uploading `source` as `file_field`, after the `fields`."""
    body = source.with_name(f"{source.stem}.{file_field}.multipart")
    head = b"".join(_text_part(name, value, boundary) for name, value in fields.items())
    file_head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{file_field}"; filename="{source.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body.write_bytes(head + file_head + source.read_bytes() + tail)
    return body


def _text_part(name: str, value: str, boundary: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()

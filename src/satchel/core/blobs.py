"""Writing a stream of plaintext into storage as one new encrypted blob."""

from __future__ import annotations

from collections.abc import Iterable

from satchel.core.ids import new_blob_key
from satchel.core.ingest import IngestedBlob, storage_error
from satchel.crypto.atrest import EncryptingWriter, new_data_key
from satchel.storage.base import BlobStore


def store_stream(
    store: BlobStore, chunks: Iterable[bytes], name: str, content_type: str
) -> IngestedBlob:
    """Encrypts ``chunks`` under a new data key into a new blob, committed when the stream ends;
    on any error nothing is left behind."""
    key = new_blob_key()
    data_key = new_data_key()
    try:
        writer = store.open_writer(key)
    except OSError as exc:
        raise storage_error(exc) from exc
    try:
        cipher = EncryptingWriter(writer, data_key)
        for chunk in chunks:
            cipher.write(chunk)
        cipher.close()
        writer.commit()
    except OSError as exc:
        writer.abort()
        raise storage_error(exc) from exc
    except BaseException:
        writer.abort()
        raise
    return IngestedBlob(
        blob_key=key,
        data_key=data_key,
        size=cipher.plaintext_size,
        name=name,
        content_type=content_type,
        file_count=1,
        file_names=[name],
    )

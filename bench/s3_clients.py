"""S3 clients compared on a real SeaweedFS on loopback: a 200 MB blob written in 1 MiB pieces
(as Satchel's encrypting writer hands them over) as a multipart upload of 8 MiB parts, then read
back in 1 MiB pieces: plain boto3 (one part at a time), obstore's writer (one part at a time)
and Satchel's S3 backend. Each runs in a process of its own so that its peak RSS is its own.
obstore is not a dependency: `pip install obstore` to include it.

    .venv/bin/python bench/s3_clients.py [--size-mb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.s3 import REGION, SeaweedFS  # noqa: E402

PIECE = 1 << 20
PART = 8 << 20
CLIENTS = ("boto3", "obstore", "satchel")


def pieces(size: int) -> Any:
    block = os.urandom(PIECE)
    for _ in range(size // PIECE):
        yield block


def run_boto3(env: dict[str, str], bucket: str, size: int) -> tuple[float, float]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=env["SATCHEL_S3_ENDPOINT"],
        region_name=REGION,
        # CRC32 of every part and body costs CPU that S3's own MD5/TLS checks make redundant.
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    started = time.perf_counter()
    upload = client.create_multipart_upload(Bucket=bucket, Key="bench")["UploadId"]
    parts, buffer = [], bytearray()

    def send() -> None:
        number = len(parts) + 1
        answer = client.upload_part(
            Bucket=bucket, Key="bench", UploadId=upload, PartNumber=number, Body=bytes(buffer)
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        buffer.clear()

    for piece in pieces(size):
        buffer += piece
        if len(buffer) >= PART:
            send()
    if buffer:
        send()
    client.complete_multipart_upload(
        Bucket=bucket, Key="bench", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    put = time.perf_counter() - started
    started = time.perf_counter()
    body = client.get_object(Bucket=bucket, Key="bench")["Body"]
    got = sum(len(chunk) for chunk in body.iter_chunks(PIECE))
    assert got == size
    return put, time.perf_counter() - started


def run_obstore(env: dict[str, str], bucket: str, size: int) -> tuple[float, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=env["SATCHEL_S3_ENDPOINT"],
        region=REGION,
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        client_options={"allow_http": True},
    )
    started = time.perf_counter()
    with obstore.open_writer(store, "bench", buffer_size=PART, max_concurrency=1) as writer:
        for piece in pieces(size):
            writer.write(piece)
    put = time.perf_counter() - started
    started = time.perf_counter()
    got = sum(len(chunk) for chunk in obstore.get(store, "bench").stream(min_chunk_size=PIECE))
    assert got == size
    return put, time.perf_counter() - started


def run_satchel(env: dict[str, str], bucket: str, size: int) -> tuple[float, float]:
    """Satchel's own S3 backend (boto3, a part in flight while the next one fills)."""
    from satchel.storage.s3 import S3BlobStore, S3Options

    store = S3BlobStore(bucket, "", S3Options(env["SATCHEL_S3_ENDPOINT"], REGION, PART))
    started = time.perf_counter()
    with store.open_writer("bench-blob-0000000") as writer:
        for piece in pieces(size):
            writer.write(piece)
        writer.commit()
    put = time.perf_counter() - started
    started = time.perf_counter()
    got = sum(len(piece) for piece in store.read_range("bench-blob-0000000"))
    assert got == size
    store.close()
    return put, time.perf_counter() - started


RUNS = {"boto3": run_boto3, "obstore": run_obstore, "satchel": run_satchel}


def child(name: str, bucket: str, size: int) -> None:
    env = dict(os.environ)
    run = RUNS[name]
    put, get = run(env, bucket, size)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"put_mb_s": size / put / 1e6, "get_mb_s": size / get / 1e6, "rss": rss_mb}))


def has_obstore() -> bool:
    try:
        import obstore  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    size = args.size_mb * PIECE
    if args.child:
        child(args.child[0], args.child[1], size)
        return
    with tempfile.TemporaryDirectory() as folder:
        server = SeaweedFS(Path(folder))
        server.start()
        try:
            clients = [name for name in CLIENTS if name != "obstore" or has_obstore()]
            results: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
            for _round in range(args.rounds):
                for name in clients:
                    bucket = server.make_bucket()
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--size-mb",
                            str(args.size_mb),
                            "--child",
                            name,
                            bucket,
                        ],
                        env={**os.environ, **server.env},
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    results[name].append(json.loads(out))
        finally:
            server.stop()
    print(f"{args.size_mb} MiB, medians of {args.rounds}")
    for name, runs in results.items():
        median = {field: statistics.median(run[field] for run in runs) for field in runs[0]}
        print(
            f"{name:8} upload {median['put_mb_s']:6.0f} MB/s  download {median['get_mb_s']:6.0f} MB/s"
            f"  peak RSS {median['rss']:5.0f} MB"
        )


if __name__ == "__main__":
    main()

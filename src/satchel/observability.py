"""Metrics and logs, for every part of Satchel (no HTTP here: web/metrics.py serves them).

Metrics are prometheus-client's. Under ``satchel serve`` every granian worker is a process of
its own, so they run in multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` names a folder made
fresh for each run (``prepare_multiproc_dir``), each process writes its values to files
there, and a scrape of any worker adds up the files of all. Without the variable (tests, the
admin commands) the values stay in the process.

Logs are one JSON object per line (or plain text, ``SATCHEL_LOG_FORMAT``), and every record
written while a request is handled carries that request's id (a context variable, which
``asyncio.to_thread`` hands to the worker threads too).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# -- the metrics -------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "satchel_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "satchel_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer, by route template.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
HTTP_BYTES_IN = Counter(
    "satchel_http_request_bytes", "Request body bytes received, by route template.", ["route"]
)
HTTP_BYTES_OUT = Counter(
    "satchel_http_response_bytes", "Response body bytes sent, by route template.", ["route"]
)
UPLOADS = Counter("satchel_uploads", "Uploads completed (registered as files).")
UPLOAD_BYTES = Counter("satchel_upload_bytes", "Bytes of the uploads completed.")
UPLOADS_IN_PROGRESS = Gauge(
    "satchel_uploads_in_progress",
    "Upload bodies being received right now, summed over the live workers.",
    multiprocess_mode="livesum",
)
DOWNLOADS = Counter("satchel_downloads", "Downloads whose body was sent to the end.")
DOWNLOAD_BYTES = Counter("satchel_download_bytes", "Bytes of the downloads sent to the end.")
JOB_RUNS = Counter("satchel_job_runs", "Background job runs, by job.", ["job"])
JOB_FAILURES = Counter("satchel_job_failures", "Background job runs that failed, by job.", ["job"])
STORAGE_ERRORS = Counter(
    "satchel_storage_errors", "Requests that failed on the blob storage (answered 500)."
)
DATABASE_ERRORS = Counter(
    "satchel_database_errors",
    "Requests that failed on the database (answered 503 when it is unavailable, else 500).",
)


@contextmanager
def upload_in_progress() -> Iterator[None]:
    UPLOADS_IN_PROGRESS.inc()
    try:
        yield
    finally:
        UPLOADS_IN_PROGRESS.dec()


def upload_completed(size: int) -> None:
    UPLOADS.inc()
    UPLOAD_BYTES.inc(size)


def download_completed(size: int) -> None:
    DOWNLOADS.inc()
    DOWNLOAD_BYTES.inc(size)


def job_finished(name: str, failed: bool) -> None:
    JOB_RUNS.labels(name).inc()
    if failed:
        JOB_FAILURES.labels(name).inc()


def backend_of(error: BaseException) -> str | None:
    """``database`` or ``storage`` when the error (or what caused it) came from one."""
    from sqlalchemy.exc import SQLAlchemyError

    from satchel.errors import DatabaseUnavailable, SatchelError

    seen: BaseException | None = error
    for _ in range(8):  # the chain of causes, not forever
        if seen is None:
            return None
        if isinstance(seen, DatabaseUnavailable | SQLAlchemyError):
            return "database"
        if isinstance(seen, OSError) and not isinstance(seen, SatchelError):
            return "storage"
        seen = seen.__cause__ or seen.__context__
    return None


def count_failure(error: BaseException, status: int) -> None:
    """A request answered 500 or 503: counted when the database or the storage failed."""
    if status not in (500, 503):
        return
    backend = backend_of(error)
    if backend == "database":
        DATABASE_ERRORS.inc()
    elif backend == "storage":
        STORAGE_ERRORS.inc()


# -- multiprocess mode -------------------------------------------------------------------


def prepare_multiproc_dir() -> tuple[Path, bool]:
    """The folder of this serve run's metric files, empty; True when it was made here (and
    is to be removed at the end). An operator's own PROMETHEUS_MULTIPROC_DIR is emptied."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="satchel-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def exposition() -> bytes:
    """The text format of every metric: of all the workers in multiprocess mode."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return generate_latest(REGISTRY)
    from prometheus_client import multiprocess

    forget_dead_workers()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def remove_at_exit(path: str) -> None:
    """At the end of ``satchel serve``, the folder it made for this run's metric files."""
    import atexit

    if path:
        atexit.register(shutil.rmtree, path, True)


_PID_OF_FILE = re.compile(r"_(\d+)\.db$")


def forget_dead_workers() -> list[int]:
    """The live gauges of processes that ended (a worker that died or was replaced) no
    longer count; their counters stay, as what they counted did happen."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return []
    from prometheus_client import multiprocess

    dead = set()
    for path in Path(folder).glob("gauge_live*.db"):
        match = _PID_OF_FILE.search(path.name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- logs --------------------------------------------------------------------------------

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "satchel_request_id", default=None
)

# What an access line adds to the record (``extra=``); nothing else of a request is logged.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "bytes", "bytes_in")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and the fields
    of an access line)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or request_id.get() or "-"
        return super().format(record)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str, access_log: bool) -> None:
    """The root logger of a worker process: one handler on stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger("satchel.access")
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    # httpx (URL imports) logs every URL it fetches, query strings and all, at INFO.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(root.level, logging.WARNING))


def granian_log_config(log_format: str) -> dict[str, Any] | None:
    """granian's own lines (start, workers) in the same format; None keeps granian's."""
    if log_format != "json":
        return None
    json_formatter = {"()": "satchel.observability.JsonFormatter"}
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"generic": json_formatter, "access": json_formatter},
        "handlers": {
            "console": {**stream, "formatter": "generic"},
            "access": {**stream, "formatter": "access"},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }

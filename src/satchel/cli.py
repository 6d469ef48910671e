"""``satchel serve | admin …``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from satchel.config import SETTINGS, Settings, load_settings
from satchel.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    if args.config:
        os.environ["SATCHEL_CONFIG"] = args.config
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"satchel: {exc}", file=sys.stderr)
        return 2
    result: int = args.handler(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="satchel", description="Self-hosted file sharing and cloud drive"
    )
    parser.add_argument("--config", help="TOML settings file (also SATCHEL_CONFIG)")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, help="worker processes (default: the workers setting)"
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(handler=_serve)

    admin = commands.add_parser("admin", help="administration").add_subparsers(
        title="admin commands"
    )
    admin.add_parser("migrate", help="apply database migrations").set_defaults(handler=_migrate)
    admin.add_parser(
        "rotate-keys", help="new primary master key; re-wrap every data key"
    ).set_defaults(handler=_rotate_keys)
    admin.add_parser("run-jobs", help="run the background jobs that are due, once").set_defaults(
        handler=_run_jobs
    )
    admin.add_parser("settings", help="print every setting with its value").set_defaults(
        handler=_settings
    )
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.web.state import master_keys

    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _migrate_once(settings)
    master_keys(settings)  # creates the key file once, before the workers start
    _tune_allocator()
    workers = args.workers or settings.workers or os.cpu_count() or 1
    print(
        f"Satchel on http://{args.host}:{args.port} (public URL {settings.public_url})", flush=True
    )
    if (
        workers > 1
        and settings.rate_limits_enabled
        and settings.rate_limit_storage.startswith("memory")
    ):
        print(
            f"note: rate limits are counted per worker ({workers} workers, memory storage); "
            "set SATCHEL_RATE_LIMIT_STORAGE=redis://… to share them",
            flush=True,
        )
    # The process is replaced by a fresh one that imports the app's modules and starts
    # granian: the workers it forks share those pages instead of each importing its own
    # copy, and none of them carries the migrations. Each worker builds its own app.
    argv = [
        sys.executable, "-c", _PRELOAD_AND_RUN_GRANIAN,
        "--interface", "asgi", "--loop", "uvloop", "--http", "1",
        "--host", args.host, "--port", str(args.port), "--workers", str(workers),
        "--log-level", settings.log_level, "--no-ws",
        "--access-log" if args.access_log else "--no-access-log",
        "--factory", "satchel.web.app:create_server_app",
    ]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our interpreter, fixed arguments
    return 0  # not reached


_PRELOAD_AND_RUN_GRANIAN = (
    "import gc, runpy, satchel.web.app; gc.freeze(); "
    "runpy.run_module('granian', run_name='__main__', alter_sys=True)"
)


def _migrate_once(settings: Settings) -> None:
    from satchel.db.engine import Database

    db = Database(settings.sqlalchemy_url)
    try:
        db.migrate()
    finally:
        db.dispose()


def _tune_allocator() -> None:
    """Fixed glibc malloc thresholds for the worker processes (they read them at start).

    With the default, adaptive thresholds, the 0.1 to 1 MiB buffers that stream through every
    upload keep being mapped and unmapped, and the page faults halve upload throughput
    (docs/performance.md). An operator's own settings win.
    """
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 << 20))
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(256 << 20))
    # Many worker threads would otherwise each get an arena of their own, and hold on to it.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    _migrate_once(settings)
    print("database is up to date")
    return 0


def _rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.core.rotation import rewrap_all
    from satchel.crypto.keys import KeyRing, add_primary_key
    from satchel.db.engine import Database

    if settings.master_keys:
        print("Master keys come from SATCHEL_MASTER_KEYS: put the new key first there, then this")
        print("command re-wraps every data key under it.")
        keys = KeyRing(settings.master_keys)
    else:
        path = settings.data_path / "master.keys"
        add_primary_key(path)
        from satchel.crypto.keys import load_or_create_keyfile

        keys = KeyRing(load_or_create_keyfile(path))
    db = Database(settings.sqlalchemy_url)
    try:
        db.migrate()
        count = rewrap_all(db, keys)
    finally:
        db.dispose()
    print(f"re-wrapped {count} data key(s) under primary key {keys.primary_fingerprint}")
    return 0


def _run_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.web.state import build_state

    state = build_state(settings)
    try:
        state.db.migrate()
        for job in state.jobs.jobs:
            print(f"{job.name}: {job.run()}")
    finally:
        state.db.dispose()
    return 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    for setting in SETTINGS:
        value = settings.values[setting.name]
        if setting.name == "master_keys" and value:
            value = f"({len(value)} key(s))"
        print(f"{setting.env}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``satchel serve | admin …``, and the client commands of ``satchel.client.cli``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from satchel.client import cli as client_cli
from satchel.config import SETTINGS, Settings, load_settings
from satchel.errors import ConfigError, SatchelError
from satchel.units import parse_duration

if (
    TYPE_CHECKING
):  # the server's modules load only for the server's commands: the client starts fast
    from satchel.core.accounts import AccountService, NewUser
    from satchel.core.admin import AdminService
    from satchel.db.engine import Database
    from satchel.db.models import User

Handler = Callable[[Settings, argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if hasattr(args, "client_command"):  # the client needs no server settings
        return client_cli.run(args, unknown)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not hasattr(args, "handler"):
        parser.print_help()
        return 1
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
    serve.add_argument(
        "--no-jobs",
        action="store_true",
        help="run no background jobs or URL imports here (a `satchel jobs` process runs them)",
    )
    serve.set_defaults(handler=_serve)
    commands.add_parser(
        "jobs", help="run the background jobs and URL imports alone, without serving requests"
    ).set_defaults(handler=_jobs)

    admin = commands.add_parser("admin", help="administration").add_subparsers(
        title="admin commands"
    )
    admin.add_parser("migrate", help="apply database migrations").set_defaults(handler=_migrate)
    admin.add_parser(
        "rotate-keys", help="new primary master key; re-wrap every data key"
    ).set_defaults(handler=_rotate_keys)
    admin.add_parser(
        "retire-keys",
        help="drop every master key but the primary (refused while a data key depends on one)",
    ).set_defaults(handler=_retire_keys)
    admin.add_parser("run-jobs", help="run every background job once, now").set_defaults(
        handler=_run_jobs
    )
    admin.add_parser("settings", help="print every setting with its value").set_defaults(
        handler=_settings
    )
    _add_user_commands(admin)
    _add_invite_command(admin)
    _add_audit_command(admin)
    client_cli.add_client_commands(commands)
    return parser


def _add_user_commands(admin: Any) -> None:
    create = admin.add_parser("create-user", help="create an account")
    create.add_argument("name")
    create.add_argument("--password", required=True)
    create.add_argument("--email")
    create.add_argument("--admin", action="store_true")
    create.add_argument("--package", help="package name (default: the default_package setting)")
    create.set_defaults(handler=_create_user)
    admin.add_parser("list-users", help="list accounts").set_defaults(handler=_list_users)
    package = admin.add_parser("set-package", help="move an account to another package")
    package.add_argument("name")
    package.add_argument("package")
    package.set_defaults(handler=_set_package)
    disable = admin.add_parser("disable-user", help="disable (or --enable) an account")
    disable.add_argument("name")
    disable.add_argument("--enable", action="store_true", help="enable it again")
    disable.set_defaults(handler=_disable_user)
    api = admin.add_parser("set-api-access", help="turn an account's API access on or off")
    api.add_argument("name")
    api.add_argument("state", choices=["on", "off"])
    api.set_defaults(handler=_set_api_access)
    key = admin.add_parser("create-api-key", help="create an API key; prints the secret last")
    key.add_argument("name")
    key.add_argument("--permissions", default="", help="comma-separated: read,download,write,…")
    key.add_argument(
        "--allow-ip", action="append", default=[], help="IPv4 address or CIDR (repeatable)"
    )
    key.add_argument("--label", default="")
    key.set_defaults(handler=_create_api_key)
    v2_keys = admin.add_parser(
        "create-v2-keys",
        help="make a new /api/v2 key pair (the old one stops working); prints key1 key2 last",
    )
    v2_keys.add_argument("name")
    v2_keys.set_defaults(handler=_create_v2_keys)


def _add_invite_command(admin: Any) -> None:
    invite = admin.add_parser(
        "create-invite", help="create a one-time registration code; prints the code last"
    )
    invite.add_argument(
        "--expires",
        type=_invite_lifetime,
        default=timedelta(days=7),
        help="how long the code stays valid: 6h, 7d, 2w … or 0 for no expiry (default 7d)",
    )
    invite.set_defaults(handler=_create_invite)
    admin.add_parser(
        "list-invites", help="list invites, newest first: id, created, expires, state"
    ).set_defaults(handler=_list_invites)
    revoke = admin.add_parser("revoke-invite", help="make an unused invite code stop working")
    revoke.add_argument("id", type=int, help="the invite's id (from list-invites)")
    revoke.set_defaults(handler=_revoke_invite)


def _add_audit_command(admin: Any) -> None:
    audit = admin.add_parser("audit", help="print the audit log, newest first")
    audit.add_argument("--limit", type=int, default=50, help="how many events (default 50)")
    audit.add_argument(
        "--event", help="one event (login.failed) or a family ending in '.' (admin.)"
    )
    audit.add_argument("--user", help="what this user did, and what was done to the account")
    audit.set_defaults(handler=_audit)


def _audit_lines(accounts: AccountService, args: argparse.Namespace) -> str:
    from satchel.core.audit import AuditLog

    user = accounts.get(args.user) if args.user else None
    entries = AuditLog(accounts.db).latest(args.limit, args.event, user)
    return (
        "\n".join(
            f"{e.at:%Y-%m-%d %H:%M:%S}\t{e.event}\t{e.actor or e.actor_id or '-'}\t"
            f"{e.ip or '-'}\t{e.target or '-'}\t{e.detail}"
            for e in entries
        )
        or "no events"
    )


def _invite_lifetime(value: str) -> timedelta | None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return timedelta(seconds=seconds) if seconds else None


def _accounts(settings: Settings) -> Iterator[AccountService]:
    from satchel.services import account_service

    db = _database(settings)
    try:
        db.migrate()
        yield account_service(settings, db)  # the packages made on the admin pages too
    finally:
        db.dispose()


def _account_command(action: Callable[[AccountService, argparse.Namespace], str]) -> Handler:
    def handler(settings: Settings, args: argparse.Namespace) -> int:
        try:
            for accounts in _accounts(settings):
                print(action(accounts, args))
        except SatchelError as exc:
            print(f"satchel: {exc.detail}", file=sys.stderr)
            return 1
        return 0

    return handler


def _describe(user: User) -> str:
    flags = [f for f, on in (("admin", user.is_admin), ("disabled", user.is_disabled)) if on]
    flags.append("api on" if user.api_enabled else "api off")
    return f"{user.id}\t{user.username}\t{user.email or '-'}\t{user.package}\t{', '.join(flags)}"


def _new_user(args: argparse.Namespace) -> NewUser:
    from satchel.core.accounts import NewUser

    return NewUser(args.name, args.password, args.email, args.admin, args.package)


_create_user = _account_command(
    lambda acc, a: "created " + _describe(acc.create_user(_new_user(a)))
)
_list_users = _account_command(
    lambda acc, a: "\n".join(_describe(u) for u in acc.list_users()) or "no users"
)


def _admin(accounts: AccountService) -> AdminService:
    """What the admin pages call, acting for the operator (audited with no actor)."""
    from satchel.core.admin import AdminService, PackageCatalog
    from satchel.core.invites import InviteService

    assert isinstance(accounts.packages, PackageCatalog)
    return AdminService(accounts.db, accounts, accounts.packages, InviteService(accounts.db))


def _id_of(accounts: AccountService, name: str) -> int:
    return accounts.get(name).id


_set_package = _account_command(
    lambda acc, a: _describe(_admin(acc).set_package(None, _id_of(acc, a.name), a.package))
)
_disable_user = _account_command(
    lambda acc, a: _describe(_admin(acc).set_disabled(None, _id_of(acc, a.name), not a.enable))
)
_set_api_access = _account_command(
    lambda acc, a: _describe(_admin(acc).set_api_access(None, _id_of(acc, a.name), a.state == "on"))
)


def _new_api_key(accounts: AccountService, args: argparse.Namespace) -> str:
    from satchel.core.apikeys import ApiKeyService

    user = accounts.get(args.name)
    permissions = {name.strip(): True for name in args.permissions.split(",") if name.strip()}
    created = ApiKeyService(accounts.db).create(user, args.label, permissions, args.allow_ip)
    granted = ",".join(name for name, on in created.key.permissions.items() if on) or "none"
    return f"key {created.key.id} for {user.username}: permissions {granted}\n{created.secret}"


_create_api_key = _account_command(_new_api_key)


def _new_v2_keys(accounts: AccountService, args: argparse.Namespace) -> str:
    from satchel.core.v2auth import V2AuthService

    user = accounts.get(args.name)
    key1, key2 = V2AuthService(accounts.db).generate_keys(user.id)
    return (
        f"/api/v2 key pair for {user.username}; the previous pair no longer works:\n{key1} {key2}"
    )


_create_v2_keys = _account_command(_new_v2_keys)


def _new_invite(accounts: AccountService, args: argparse.Namespace) -> str:
    from satchel.db.models import utcnow

    code = _admin(accounts).create_invite(None, args.expires)
    until = f"until {utcnow() + args.expires:%Y-%m-%d %H:%M} UTC" if args.expires else "forever"
    return f"invite code, for one registration, valid {until}:\n{code}"


_create_invite = _account_command(_new_invite)


def _invite_lines(accounts: AccountService, args: argparse.Namespace) -> str:
    from satchel.db.models import utcnow

    now, lines = utcnow(), []
    for row in _admin(accounts).invite_list(limit=1000):
        expires = f"{row.expires_at:%Y-%m-%d %H:%M}" if row.expires_at else "never"
        state = row.status(now)
        if row.used_at is not None:
            state += f" {row.used_at:%Y-%m-%d %H:%M} by {row.used_by or '(account deleted)'}"
        lines.append(f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\t{expires}\t{state}")
    return "\n".join(lines) or "no invites"


def _revoke(accounts: AccountService, args: argparse.Namespace) -> str:
    _admin(accounts).revoke_invite(None, args.id)
    return f"invite {args.id} revoked: its code no longer works"


_list_invites = _account_command(_invite_lines)
_revoke_invite = _account_command(_revoke)
_audit = _account_command(_audit_lines)


DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def _public_url(settings: Settings, args: argparse.Namespace) -> str:
    """Links name the address served when no public URL was set (``--port 9000`` alone gives
    links on port 9000, not 8000); the workers read it from the environment."""
    if settings.public_url != DEFAULT_PUBLIC_URL or "SATCHEL_PUBLIC_URL" in os.environ:
        return settings.public_url
    host = "127.0.0.1" if args.host in {"0.0.0.0", "::", ""} else args.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    os.environ["SATCHEL_PUBLIC_URL"] = f"http://{host}:{args.port}"
    return os.environ["SATCHEL_PUBLIC_URL"]


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.services import key_source

    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _migrate_once(settings)
    key_source(settings)()  # creates the key file once, before the workers start
    _tune_allocator()
    workers = args.workers or settings.workers or os.cpu_count() or 1
    public_url = _public_url(settings, args)
    print(f"Satchel on http://{args.host}:{args.port} (public URL {public_url})", flush=True)
    if workers > 1 and settings.rate_limits_enabled and settings.rate_limit_uri == "memory://":
        print(
            f"note: rate limits are counted per worker ({workers} workers, memory storage); "
            "set SATCHEL_REDIS_URL=redis://… to share them",
            flush=True,
        )
    factory = "create_server_app_without_jobs" if args.no_jobs else "create_server_app"
    # The process is replaced by a fresh one that imports the app's modules and starts
    # granian: the workers it forks share those pages instead of each importing its own
    # copy, and none of them carries the migrations. Each worker builds its own app.
    argv = [
        sys.executable, "-c", _PRELOAD_AND_RUN_GRANIAN,
        "--interface", "asgi", "--loop", "uvloop", "--http", "1",
        "--host", args.host, "--port", str(args.port), "--workers", str(workers),
        "--log-level", settings.log_level, "--no-ws",
        *_observability(settings, args),
        "--factory", f"satchel.web.app:{factory}",
    ]  # fmt: skip
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our interpreter, fixed arguments
    return 0  # not reached


_PRELOAD_AND_RUN_GRANIAN = (
    "import gc, os, runpy, satchel.observability, satchel.web.app; gc.freeze(); "
    "satchel.observability.remove_at_exit(os.environ.pop('SATCHEL_METRICS_DIR_MADE', '')); "
    "runpy.run_module('granian', run_name='__main__', alter_sys=True)"
)


def _observability(settings: Settings, args: argparse.Namespace) -> list[str]:
    """Metrics in multiprocess mode, in a folder of this run's own, and the logs' format.

    granian's access log is never on: it writes raw paths (file ids, management tokens);
    Satchel's own access lines name the route template (``--access-log``)."""
    import json

    from satchel.observability import granian_log_config, prepare_multiproc_dir

    folder, made = prepare_multiproc_dir()
    if made:
        os.environ["SATCHEL_METRICS_DIR_MADE"] = str(folder)
    if args.access_log:
        os.environ["SATCHEL_ACCESS_LOG"] = "true"
    extra = ["--no-access-log"]
    config = granian_log_config(settings.log_format)
    if config is not None:
        path = folder / "granian-logging.json"
        path.write_text(json.dumps(config))
        extra += ["--log-config", str(path)]
    return extra


def _migrate_once(settings: Settings) -> None:
    from satchel.db.engine import Database

    db = Database(settings.sqlalchemy_url)
    try:
        with _migration_lock(settings.sqlalchemy_url):
            db.migrate()
    finally:
        db.dispose()


# Any fixed number: the PostgreSQL advisory lock that instances starting at once take in turn.
MIGRATION_LOCK = 0x5A7C4E15


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, one process migrates at a time; the others then find nothing to do
    (two Alembic runs at once on a new database would both create the tables, and one fail)."""
    if url.startswith("sqlite"):
        yield  # one machine: its processes start one after another
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)  # no statement timeout: migrations take long
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        engine.dispose()


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
    from satchel.core.rotation import rotate
    from satchel.crypto.keys import KeyRing, add_primary_key, load_or_create_keyfile

    if settings.master_keys:
        print("Master keys come from SATCHEL_MASTER_KEYS: the first one there becomes the")
        print("primary. Every instance must already have it (give it to all, then run this).")
        keys = KeyRing(settings.master_keys)
    else:
        path = settings.data_path / "master.keys"
        add_primary_key(path)
        keys = KeyRing(load_or_create_keyfile(path))
    db = _database(settings)
    try:
        db.migrate()
        done = rotate(db, keys)
    finally:
        db.dispose()
    print(f"re-wrapped {done.rewrapped} data key(s) under primary key {done.primary}")
    return 0


def _retire_keys(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.core.keyring import bump_version
    from satchel.core.rotation import RetireRefused, retirable
    from satchel.crypto.keys import KeyRing, keep_only, load_or_create_keyfile

    path = settings.data_path / "master.keys"
    keys = KeyRing(settings.master_keys or load_or_create_keyfile(path))
    db = _database(settings)
    try:
        db.migrate()
        try:
            old = retirable(db, keys)
        except RetireRefused as exc:
            print(f"satchel: {exc}", file=sys.stderr)
            return 1
        if not old:
            print("nothing to retire: the key ring holds only the primary key")
            return 0
        if settings.master_keys:
            print("No data key depends on these keys any more; remove them from")
            print(f"SATCHEL_MASTER_KEYS on every instance: {', '.join(old)}")
            return 0
        kept = [key_id for key_id in keys.fingerprints if key_id not in old]
        keep_only(path, kept)
        bump_version(db)  # running workers read the key file again and forget the old keys
    finally:
        db.dispose()
    print(f"retired {len(old)} key(s): {', '.join(old)}; primary key {kept[0]} remains")
    return 0


def _database(settings: Settings) -> Database:
    from satchel.services import open_database

    return open_database(settings)


def _run_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from satchel.services import build_services

    services = build_services(settings)
    try:
        services.db.migrate()
        for job in services.jobs.jobs:
            print(f"{job.name}: {job.run()}")
        print(f"url_imports: {services.imports.run_pending()}")
    finally:
        services.close()
    return 0


def _jobs(settings: Settings, args: argparse.Namespace) -> int:
    """The job runner and the URL import workers until SIGTERM or SIGINT. Each job takes its
    lease in the database, so this may run beside instances that run jobs too."""
    import logging
    import signal
    import threading

    from satchel.services import build_services

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    _migrate_once(settings)
    services = build_services(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    services.jobs.start(tick=min(30.0, settings.job_interval))
    services.import_workers.start()
    print(
        f"Satchel jobs every {settings.job_interval} s, {settings.url_import_workers} import worker(s)",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        services.jobs.stop()
        services.import_workers.stop()
        services.close()
    return 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    for setting in SETTINGS:
        value = settings.values[setting.name]
        if setting.name == "master_keys" and value:
            value = f"({len(value)} key(s))"
        elif setting.name == "metrics_token" and value:
            value = "(set)"
        elif setting.name in ("database_url", "redis_url", "rate_limit_storage") and value:
            value = _without_password(str(value))
        print(f"{setting.env}={value}")
    return 0


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL that SQLAlchemy reads: show no part of it
        return "(set)"


if __name__ == "__main__":
    sys.exit(main())

"""The ASGI application: one Starlette app, one adapter module per API surface."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel import observability
from satchel.config import Settings, load_settings
from satchel.web import account, apiv1, apiv2, metrics, pages, public, tus
from satchel.web.errors import install_error_handlers
from satchel.web.state import AppState, build_state

log = logging.getLogger("satchel")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_cross_site(scope: Scope, public_origin: bytes) -> bool:
    """A browser sending a form or script request from another site (CSRF)."""
    headers: dict[bytes, bytes] = dict(scope["headers"])
    if headers.get(b"sec-fetch-site") == b"cross-site":
        return True
    origin = headers.get(b"origin", b"null")
    if origin == b"null":
        return False  # not a browser, or one that sends no origin: nothing ambient to abuse
    # The configured public URL, or the Host the request came to (a proxy may rewrite it).
    return origin != public_origin and origin.split(b"://", 1)[-1] != headers.get(b"host", b"")


class SecurityHeaders:
    """Plain ASGI wrapper (no per-request task): headers every response needs, and no
    state-changing request from another site's pages."""

    def __init__(self, app: ASGIApp, public_url: str = "") -> None:
        self.app = app
        parts = urlsplit(public_url)
        self.public_origin = f"{parts.scheme}://{parts.netloc}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and is_cross_site(scope, self.public_origin):
            response = JSONResponse({"error": "Cross-site request refused"}, status_code=403)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message["headers"]}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message["headers"], *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: AppState = request.app.state.satchel
    # In worker threads: a database or disk that hangs must not stall the event loop.
    problems = await asyncio.to_thread(_problems, state)
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


def _problems(state: AppState) -> list[str]:
    problems = []
    try:
        state.db.ping()
    except Exception as exc:
        problems.append(f"database: {type(exc).__name__}")
    try:
        state.store.check()
    except Exception as exc:
        problems.append(f"storage: {type(exc).__name__}")
    try:
        if state.redis is not None:  # SATCHEL_REDIS_URL: rate limits and upload slots need it
            state.redis.ping()
    except Exception as exc:
        problems.append(f"redis: {type(exc).__name__}")
    return problems


STATIC_DIR = Path(__file__).with_name("static")


async def service_worker(request: Request) -> Response:
    """At the root, so that it may serve the downloads it decrypts under every path."""
    return FileResponse(
        STATIC_DIR / "js" / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


COUNT_FLUSH_SECONDS = 2.0
WORKER_THREADS = 32


async def _flush_counts(state: AppState) -> None:
    while True:
        await asyncio.sleep(COUNT_FLUSH_SECONDS)
        try:
            await asyncio.to_thread(state.files.counter.flush)
        except Exception:
            log.exception("could not write download counts; keeping them for the next try")


def create_app(
    settings: Settings | None = None, *, migrate: bool = True, run_jobs: bool = True
) -> Starlette:
    settings = settings or load_settings()
    state = build_state(settings)
    if migrate:
        state.db.migrate()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Worker threads mostly wait on fsync and the database, not on the CPU: the default
        # pool (cores + 4) would cap concurrent uploads at six. 32 keeps the memory in bounds.
        executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="satchel")
        asyncio.get_running_loop().set_default_executor(executor)
        if run_jobs:
            state.jobs.start(tick=min(30.0, settings.job_interval))
            state.import_workers.start()
        flusher = asyncio.create_task(_flush_counts(state))
        try:
            yield
        finally:
            flusher.cancel()
            state.jobs.stop()
            state.import_workers.stop()
            await asyncio.to_thread(state.files.counter.flush)
            await state.limiter.close()
            state.db.dispose()
            state.store.close()
            executor.shutdown(wait=False)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/sw.js", service_worker, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        *public.routes(),
        *apiv1.routes(),
        *apiv2.routes(),
        *tus.routes(),
        *account.routes(),
        *pages.routes(),
        *metrics.routes(settings),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.satchel = state
    install_error_handlers(app)
    return app


def create_server_app(run_jobs: bool = True) -> ASGIApp:
    """Entry point of the server workers: settings from the environment, migrations already applied."""
    settings = load_settings()
    observability.configure_logging(settings.log_level, settings.log_format, settings.access_log)
    observability.forget_dead_workers()  # a worker that replaces one: the old one's gauges go
    app = SecurityHeaders(
        create_app(settings, migrate=False, run_jobs=run_jobs), settings.public_url
    )
    return metrics.Observe(app)


def create_server_app_without_jobs() -> ASGIApp:
    """``satchel serve --no-jobs``: requests only; ``satchel jobs`` runs the jobs and imports."""
    return create_server_app(run_jobs=False)

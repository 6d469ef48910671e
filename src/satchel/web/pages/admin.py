"""``/admin``: users, packages, invites, uploads and figures, for admins.

Every page is a plain HTML form page; every change is a form POST with the CSRF token that
answers 303 back to its page (or the page again with the error, or with a new invite code,
which is shown once). The rules are the core's (core.admin); this module only reads forms."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from satchel.core.actors import Member
from satchel.core.admin import EDITABLE
from satchel.core.audit import EVENTS
from satchel.core.ids import parse_number
from satchel.core.packages import Package
from satchel.db.models import User, utcnow
from satchel.errors import BadRequest, NotFound, SatchelError, Unauthorized
from satchel.web.account.forms import form_page, local_path, login_redirect, see_other
from satchel.web.account.views import package_limits
from satchel.web.csrf import check_csrf
from satchel.web.errors import Handler, status_of
from satchel.web.http import read_small_form, wants_html
from satchel.web.state import AppState

Query = Mapping[str, str]
Section = Callable[[AppState, User, Query], dict[str, Any]]
Outcome = str | dict[str, Any]  # a notice (then 303 back) or what the page shows once
Action = Callable[[AppState, User, Request, dict[str, str]], Outcome]

NOTICES = {
    "package": "Package changed.",
    "disabled": "Account disabled; its sessions and /api/v2 tokens ended.",
    "enabled": "Account enabled.",
    "api": "API access changed.",
    "saved": "Package saved.",
    "revoked": "Invite revoked.",
    "removed": "Upload removed.",
}
INVITE_LIFETIMES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
INVITE_LIFETIMES_NEVER = "never"
TICKED = frozenset({"on", "true", "1", "yes"})
AUDIT_LIMITS = (50, 100, 200, 500)


async def _admin(request: Request) -> tuple[AppState, User]:
    state: AppState = request.app.state.satchel
    actor = await state.actor(request)
    if not isinstance(actor, Member):
        raise Unauthorized("Login required")
    return state, state.admin.require(actor.user)


def page(template: str, section: Section) -> Handler:
    """A page of the admin: guests go to the login, other users get 403."""

    async def endpoint(request: Request) -> Response:
        try:
            state, admin = await _admin(request)
        except Unauthorized:
            if wants_html(request):
                return login_redirect(request.url.path)
            raise
        query = dict(request.query_params)
        context = await asyncio.to_thread(section, state, admin, query)
        notice = NOTICES.get(query.get("done", ""))
        return _render(request, template, admin, {**context, "notice": notice})

    return endpoint


def action(template: str, section: Section, back: str) -> Callable[[Action], Handler]:
    """A form post: admin, CSRF-checked; 303 back (to the form's ``back`` when it is an admin
    page), or for a browser the page again with the error or with what it shows once."""

    def wrap(do: Action) -> Handler:
        async def endpoint(request: Request) -> Response:
            state, admin = await _admin(request)
            fields = await read_small_form(request)
            check_csrf(request, fields)
            target = _back(fields.get("back"), back)
            try:
                outcome = await asyncio.to_thread(do, state, admin, request, fields)
            except (BadRequest, NotFound) as error:
                if not wants_html(request):
                    raise
                extra: dict[str, Any] = {"error": error.detail, "here_url": target}
                return await _again(request, state, admin, (template, section), extra, error)
            if isinstance(outcome, dict):
                if not wants_html(request):
                    return JSONResponse({"success": True, **outcome})
                extra = {**outcome, "here_url": target}
                return await _again(request, state, admin, (template, section), extra)
            if not wants_html(request):
                return JSONResponse({"success": True})
            return see_other(_with_query(target, done=outcome))

        return endpoint

    return wrap


async def _again(
    request: Request,
    state: AppState,
    admin: User,
    shown: tuple[str, Section],
    extra: dict[str, Any],
    error: SatchelError | None = None,
) -> Response:
    """The page the form came from (``extra["here_url"]``, its query too), shown after a post."""
    template, section = shown
    query = dict(parse_qsl(urlsplit(extra["here_url"]).query))
    context = await asyncio.to_thread(section, state, admin, query)
    status = status_of(error) if error is not None else 200
    return _render(request, template, admin, {**context, **extra}, status)


def _render(
    request: Request, template: str, admin: User, context: dict[str, Any], status: int = 200
) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    full = {"here_url": here, **context, "viewer": admin, "signed_in": True}
    return form_page(request, template, full, status)


def _back(value: str | None, default: str) -> str:
    """Where a form goes back to: one of the admin pages, never elsewhere."""
    path = local_path(value, default)
    return path if path.partition("?")[0] in SECTIONS else default


def _with_query(path: str, **values: str) -> str:
    """``path`` with ``values`` in its query (the page's own search and page number kept as
    they were sent)."""
    base, _, query = path.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0] not in ("done", *values)]
    return f"{base}?{'&'.join([*kept, urlencode(values)])}"


def _number(raw: str | None, what: str) -> int:
    number = parse_number(raw or "")
    if number is None:
        raise NotFound(f"No such {what}")
    return number


def _page_number(query: Query) -> int:
    return max(1, parse_number(query.get("page", "")) or 1)


# -- sections -------------------------------------------------------------------------------


def _overview(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    return {
        "figures": state.admin.figures(),
        "packages": len(state.admin.packages()),
        "recent_events": state.admin.audit_entries(10),
    }


def _users(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    text = query.get("q", "")[:100]
    found = state.admin.users(text, _page_number(query))
    packages = [p for p in state.admin.packages() if p.name != "guest"]
    return {"q": text, "found": found, "packages": packages}


def _packages(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    packages = state.admin.packages()
    editing = next((p for p in packages if p.name == query.get("edit")), None)
    return {
        "packages": [(p, package_limits(p)) for p in packages],
        "editing": editing,
        "fields": _package_fields(editing),
    }


def _invites(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    return {
        "invites": state.admin.invite_list(),
        "now": utcnow(),
        "lifetimes": [*INVITE_LIFETIMES, INVITE_LIFETIMES_NEVER],
        "registration": state.settings.registration,
    }


def _uploads(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    return {"found": state.admin.recent_uploads(_page_number(query))}


def _audit(state: AppState, admin: User, query: Query) -> dict[str, Any]:
    event, user = query.get("event", "")[:48], query.get("user", "")[:64]
    limit = parse_number(query.get("limit", "")) or AUDIT_LIMITS[0]
    limit = limit if limit in AUDIT_LIMITS else AUDIT_LIMITS[0]
    try:
        entries = state.admin.audit_entries(limit, event, user)
        error = None
    except NotFound as missing:
        entries, error = [], missing.detail
    # A family ("admin.") where it names more than one event.
    prefixes = [name.split(".")[0] + "." for name in EVENTS if "." in name]
    families = sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1})
    return {
        "entries": entries,
        "event": event,
        "user": user,
        "limit": limit,
        "limits": AUDIT_LIMITS,
        "events": [*families, *EVENTS],
        "error": error,
    }


# (label, field, kind): what the package form shows, in the order of the account page.
PACKAGE_FORM = (
    ("Label", "label", "text"),
    ("Largest upload", "max_upload_size", "size"),
    ("Storage", "max_storage_bytes", "size"),
    ("Uploads at once", "concurrent_uploads", "count"),
    ("Downloads at once", "concurrent_downloads", "count"),
    ("Downloads per 24 hours", "downloads_per_24_hours", "count"),
    ("Download volume per 24 hours", "download_size_per_24_hours", "size"),
    ("Download speed, bytes per second", "download_speed", "count"),
    ("Largest file to download", "max_download_filesize_allowed", "size"),
    ("Seconds between downloads", "wait_between_downloads", "count"),
    ("Remote download URLs", "max_remote_download_urls", "count"),
    ("Days inactive files are kept", "days_to_keep_inactive_files", "count"),
)


def _package_fields(package: Package | None) -> list[dict[str, Any]]:
    values = asdict(package) if package is not None else {}
    shown = []
    for label, name, kind in PACKAGE_FORM:
        value = values.get(name, "" if kind == "text" else 0)
        shown.append(
            {
                "label": label,
                "name": name,
                "kind": kind,
                "value": _size_text(value) if kind == "size" else value,
            }
        )
    return shown


def _size_text(size: int) -> str:
    """5368709120 as 5GiB: what the form shows, and takes back."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


# -- actions --------------------------------------------------------------------------------

users_action = action("admin_users.html", _users, "/admin/users")


@users_action
def set_package(state: AppState, admin: User, request: Request, fields: dict[str, str]) -> Outcome:
    user_id = _number(request.path_params["user_id"], "user")
    state.admin.set_package(admin, user_id, fields.get("package", ""))
    return "package"


@users_action
def set_disabled(state: AppState, admin: User, request: Request, fields: dict[str, str]) -> Outcome:
    user_id = _number(request.path_params["user_id"], "user")
    disabled = fields.get("disabled", "").lower() in TICKED
    state.admin.set_disabled(admin, user_id, disabled)
    return "disabled" if disabled else "enabled"


@users_action
def set_api(state: AppState, admin: User, request: Request, fields: dict[str, str]) -> Outcome:
    user_id = _number(request.path_params["user_id"], "user")
    state.admin.set_api_access(admin, user_id, fields.get("api", "").lower() in TICKED)
    return "api"


@action("admin_packages.html", _packages, "/admin/packages")
def save_package(state: AppState, admin: User, request: Request, fields: dict[str, str]) -> Outcome:
    changes: dict[str, Any] = {
        name: fields[name].strip() for name in EDITABLE if name in fields and name != "can_upload"
    }
    if "can_upload_given" in fields:
        changes["can_upload"] = fields.get("can_upload", "").lower() in TICKED
    state.admin.save_package(admin, fields.get("name", ""), changes)
    return "saved"


invites_action = action("admin_invites.html", _invites, "/admin/invites")


@invites_action
def create_invite(
    state: AppState, admin: User, request: Request, fields: dict[str, str]
) -> Outcome:
    choice = fields.get("expires", "7d")
    if choice != INVITE_LIFETIMES_NEVER and choice not in INVITE_LIFETIMES:
        raise BadRequest("Choose how long the invite stays valid")
    code = state.admin.create_invite(admin, INVITE_LIFETIMES.get(choice))
    return {"new_code": code, "register_url": state.url("/register")}


@invites_action
def revoke_invite(
    state: AppState, admin: User, request: Request, fields: dict[str, str]
) -> Outcome:
    state.admin.revoke_invite(admin, _number(request.path_params["invite_id"], "invite"))
    return "revoked"


@action("admin_uploads.html", _uploads, "/admin/uploads")
def remove_upload(
    state: AppState, admin: User, request: Request, fields: dict[str, str]
) -> Outcome:
    state.admin.remove_upload(admin, _number(request.path_params["file_id"], "upload"))
    return "removed"


SECTIONS = ("/admin", "/admin/users", "/admin/packages", "/admin/invites", "/admin/uploads",
            "/admin/audit")  # fmt: skip

PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/admin", page("admin.html", _overview), ["GET"]),
    ("/admin/users", page("admin_users.html", _users), ["GET"]),
    ("/admin/users/{user_id}/package", set_package, ["POST"]),
    ("/admin/users/{user_id}/disabled", set_disabled, ["POST"]),
    ("/admin/users/{user_id}/api", set_api, ["POST"]),
    ("/admin/packages", page("admin_packages.html", _packages), ["GET"]),
    ("/admin/packages", save_package, ["POST"]),
    ("/admin/invites", page("admin_invites.html", _invites), ["GET"]),
    ("/admin/invites", create_invite, ["POST"]),
    ("/admin/invites/{invite_id}/revoke", revoke_invite, ["POST"]),
    ("/admin/uploads", page("admin_uploads.html", _uploads), ["GET"]),
    ("/admin/uploads/{file_id}/remove", remove_upload, ["POST"]),
    ("/admin/audit", page("admin_audit.html", _audit), ["GET"]),
]

"""Browser accounts: register, log in and out, the account page and its forms."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.account import login, pages
from satchel.web.errors import Handler, guard, public

PAGES: list[tuple[str, Handler, list[str]]] = [
    ("/register", login.register_form, ["GET"]),
    ("/register", login.register, ["POST"]),
    ("/login", login.login_form, ["GET"]),
    ("/login", login.login, ["POST"]),
    ("/logout", login.logout, ["POST"]),
    ("/account", pages.show, ["GET"]),
    ("/account/password", pages.change_password, ["POST"]),
    ("/account/keys", pages.create_key, ["POST"]),
    ("/account/keys/{key_id}/revoke", pages.revoke_key, ["POST"]),
    ("/account/v2-keys", pages.create_v2_keys, ["POST"]),
]


def routes() -> list[Route]:
    """Forms show their errors on the form for browsers (account.forms); the rest answer
    as the public API does."""
    shaped = guard(public)
    return [Route(path, shaped(handler), methods=methods) for path, handler, methods in PAGES]

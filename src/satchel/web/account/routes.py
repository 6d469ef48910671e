"""Browser accounts: register, log in and out, the account page and its forms."""

from __future__ import annotations

from starlette.routing import Route

from satchel.web.account import login, pages


def routes() -> list[Route]:
    return [
        Route("/register", login.register_form, methods=["GET"]),
        Route("/register", login.register, methods=["POST"]),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/account", pages.show, methods=["GET"]),
        Route("/account/password", pages.change_password, methods=["POST"]),
        Route("/account/keys", pages.create_key, methods=["POST"]),
        Route("/account/keys/{key_id}/revoke", pages.revoke_key, methods=["POST"]),
        Route("/account/v2-keys", pages.create_v2_keys, methods=["POST"]),
    ]

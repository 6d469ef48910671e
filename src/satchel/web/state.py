"""What a request handler needs: the services, and what only the web knows (who sends a
request, the request rate limits, which proxies to believe)."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field, fields

from starlette.requests import Request

from satchel.config import Settings
from satchel.core.actors import Actor, Guest, Member
from satchel.services import Services, build_services
from satchel.web.http import client_ip
from satchel.web.ratelimit import RateLimiter

SESSION_COOKIE = "satchel_session"


@dataclass
class AppState(Services):
    limiter: RateLimiter = field(kw_only=True)
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(
        default_factory=list, kw_only=True
    )

    async def actor(self, request: Request, key_permission: str | None = None) -> Actor:
        """Who sends ``request``: the user of its session cookie or, where the endpoint takes
        one, of an API key with ``key_permission``; otherwise a guest at the client address.
        A key that is sent but fails answers 401/403 rather than falling back to a guest."""
        ip = self.client_ip(request)
        if key_permission is not None and "authorization" in request.headers:
            header = request.headers["authorization"]
            key_user, _key = await asyncio.to_thread(
                self.apikeys.authenticate, header, ip, key_permission
            )
            return Member(ip=ip, user=key_user)
        token = request.cookies.get(SESSION_COOKIE)
        user = await asyncio.to_thread(self.sessions.user_for, token) if token else None
        request.state.viewer = user  # the pages' header: signed in (an admin?) or not
        if user is not None:
            return Member(ip=ip, user=user, by_session=True)
        return Guest(ip=ip)

    def client_ip(self, request: Request) -> str:
        return client_ip(request, self.trusted)

    def url(self, path: str) -> str:
        return f"{self.settings.public_url}{path}"


def build_state(settings: Settings) -> AppState:
    services = build_services(settings)
    built = {f.name: getattr(services, f.name) for f in fields(Services)}
    return AppState(
        **built,
        limiter=RateLimiter(settings),
        trusted=[ipaddress.ip_network(n) for n in settings.trusted_proxies],
    )

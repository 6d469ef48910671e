"""Per-endpoint rate limits (the `limits` package), guests by address, users by id."""

from __future__ import annotations

import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from satchel.config import Settings
from satchel.core.actors import Actor
from satchel.errors import RateLimited, ServiceUnavailable

SHARED_STATE_DOWN = "Shared state is unavailable, try again shortly"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        uri = settings.rate_limit_uri  # Redis when SATCHEL_REDIS_URL is set
        if not uri.startswith("async+"):
            uri = "async+" + uri
        options: dict[str, object] = {}
        if "redis" in uri:  # a Redis that is down answers 503, as a database that is down
            options = {"implementation": "redispy", "wrap_exceptions": True}
            options["key_prefix"] = settings.redis_prefix + "limits"
            options["socket_timeout"] = max(1.0, float(settings.db_statement_timeout))
            options["socket_connect_timeout"] = max(1.0, float(settings.db_connect_timeout))
        self.storage = storage_from_string(uri, **options)  # type: ignore[arg-type]
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.table: dict[str, tuple[list[RateLimitItem], list[RateLimitItem]]] = {
            name: (parse_many(limit.guest), parse_many(limit.user))
            for name, limit in settings.rate_limits.items()
        }

    async def close(self) -> None:
        """Closes a Redis connection pool (the memory storage holds nothing to close)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    async def hit(self, endpoint: str, actor: Actor) -> None:
        if not self.enabled:
            return
        guest_limits, user_limits = self.table[endpoint]
        identity = f"user:{actor.user_id}" if actor.user_id is not None else f"ip:{actor.ip}"
        try:
            for item in user_limits if actor.user_id is not None else guest_limits:
                if not await self.strategy.hit(item, "satchel", endpoint, identity):
                    stats = await self.strategy.get_window_stats(
                        item, "satchel", endpoint, identity
                    )
                    raise RateLimited(int(stats.reset_time - time.time()) + 1)
        except StorageError as exc:
            raise ServiceUnavailable(SHARED_STATE_DOWN) from exc

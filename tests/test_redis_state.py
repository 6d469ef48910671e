"""State the instances share through Redis (SATCHEL_REDIS_URL): concurrent-upload slots with an
expiry that frees a dead instance's slots, and the rate limits. Without the setting the slots
stay in the database and the limits in each process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis
from starlette.testclient import TestClient

from satchel.config import Settings, load_settings
from satchel.core.slots import DatabaseSlots, RedisSlots
from satchel.errors import ConfigError, ServiceUnavailable, TooManyUploads
from satchel.services import build_services
from satchel.web.app import create_app

REDIS_URL = os.environ.get("SATCHEL_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
CLOSED_PORT_URL = "redis://127.0.0.1:9/0"  # discard: nothing listens there


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        client.close()
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis: Redis) -> Iterator[str]:
    """Keys of this test only (the Redis may serve other runs at the same time)."""
    name = f"satchel-test:{uuid.uuid4().hex}:"
    yield name
    for key in redis.scan_iter(f"{name}*"):
        redis.delete(key)


def fresh_ip() -> str:
    return ".".join(["10", *(str(b) for b in uuid.uuid4().bytes[:3])])


# -- settings -------------------------------------------------------------------------------


def test_redis_url_is_checked_and_rate_limits_follow_it() -> None:
    assert load_settings(environ={}).redis_url == ""
    assert load_settings(environ={}).rate_limit_uri == "memory://"
    shared = load_settings(environ={"SATCHEL_REDIS_URL": "redis://cache:6379/2"})
    assert shared.rate_limit_uri == "redis://cache:6379/2"
    own = load_settings(
        environ={"SATCHEL_REDIS_URL": "redis://cache/2", "SATCHEL_RATE_LIMIT_STORAGE": "memory://"}
    )
    assert own.rate_limit_uri == "memory://"
    with pytest.raises(ConfigError, match="SATCHEL_REDIS_URL"):
        load_settings(environ={"SATCHEL_REDIS_URL": "cache:6379"})


def test_slots_are_in_redis_only_when_it_is_configured(settings: Settings, redis: Redis) -> None:
    alone = build_services(settings)
    shared = build_services(settings.replace(redis_url=REDIS_URL))
    try:
        assert isinstance(alone.uploads.slots, DatabaseSlots)
        assert alone.redis is None
        assert isinstance(shared.uploads.slots, RedisSlots)
        assert shared.redis is not None
    finally:
        alone.close()
        shared.close()


# -- RedisSlots -------------------------------------------------------------------------------


def test_the_limit_holds_across_instances(redis: Redis, prefix: str) -> None:
    first = RedisSlots(Redis.from_url(REDIS_URL), prefix=prefix)
    second = RedisSlots(Redis.from_url(REDIS_URL), prefix=prefix)
    held = [first.acquire("user:1", 2), second.acquire("user:1", 2)]
    with pytest.raises(TooManyUploads, match="at most 2"):
        first.acquire("user:1", 2)
    with pytest.raises(TooManyUploads):
        second.acquire("user:1", 2)
    assert second.acquire("user:2", 2)  # someone else's slots are apart
    first.release(held[0])
    assert first.acquire("user:1", 2)


def test_simultaneous_acquires_take_exactly_the_limit(redis: Redis, prefix: str) -> None:
    instances = [RedisSlots(Redis.from_url(REDIS_URL), prefix=prefix) for _ in range(4)]
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def take(slots: RedisSlots) -> None:
        start.wait()
        try:
            slots.acquire("ip:198.51.100.7", 3)
            outcomes.append("slot")
        except TooManyUploads:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(instances[n % 4],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 17 + ["slot"] * 3


def test_a_running_upload_keeps_its_slot_past_the_ttl(redis: Redis, prefix: str) -> None:
    holder = RedisSlots(Redis.from_url(REDIS_URL), ttl=1.2, prefix=prefix)
    other = RedisSlots(Redis.from_url(REDIS_URL), ttl=1.2, prefix=prefix)
    slot = holder.acquire("user:9", 1)
    time.sleep(2.6)  # over two lifetimes: renewed meanwhile
    with pytest.raises(TooManyUploads):
        other.acquire("user:9", 1)
    holder.release(slot)
    assert holder.held() == 0
    assert other.acquire("user:9", 1)


HOLD_AND_WAIT = """
import sys, time
from redis import Redis
from satchel.core.slots import RedisSlots
slots = RedisSlots(Redis.from_url(sys.argv[1]), ttl=1.2, prefix=sys.argv[2])
slots.acquire("user:5", 1)
print("held", flush=True)
time.sleep(60)
"""


def test_the_slots_of_a_killed_instance_free_themselves(redis: Redis, prefix: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, REDIS_URL, prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        time.sleep(1.5)  # the live holder renews its slot
        survivor = RedisSlots(Redis.from_url(REDIS_URL), ttl=1.2, prefix=prefix)
        with pytest.raises(TooManyUploads):
            survivor.acquire("user:5", 1)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    deadline = time.monotonic() + 4
    while True:
        try:
            survivor.acquire("user:5", 1)
            break
        except TooManyUploads:
            assert time.monotonic() < deadline, "the dead holder's slot never expired"
            time.sleep(0.1)
    assert redis.pttl(f"{prefix}user:5") <= 1200  # the key itself goes too


def test_a_redis_that_is_down_answers_503_not_500() -> None:
    slots = RedisSlots(Redis.from_url(CLOSED_PORT_URL, socket_connect_timeout=1))
    with pytest.raises(ServiceUnavailable):
        slots.acquire("user:1", 1)


# -- through the app ------------------------------------------------------------------------------


def test_an_upload_waits_for_a_slot_another_instance_holds(
    settings: Settings, redis: Redis
) -> None:
    shared = settings.replace(redis_url=REDIS_URL, packages={"guest": {"concurrent_uploads": 1}})
    address = fresh_ip()
    elsewhere = RedisSlots(Redis.from_url(REDIS_URL))  # what another instance would write
    held = elsewhere.acquire(f"ip:{address}", 1)
    app = create_app(shared, migrate=False, run_jobs=False)
    with TestClient(app, client=(address, 1)) as client:
        refused = client.post("/upload", files={"files": ("a.txt", b"a")})
        assert refused.status_code == 429, refused.text
        assert "at most 1" in refused.json()["error"]
        elsewhere.release(held)
        assert client.post("/upload", files={"files": ("a.txt", b"a")}).status_code == 200
        assert redis.zcard(f"satchel:slots:ip:{address}") == 0  # given back after the upload


def test_rate_limits_follow_the_redis_url(settings: Settings, redis: Redis) -> None:
    from satchel.config import parse_rate_limits

    shared = settings.replace(
        redis_url=REDIS_URL,
        rate_limits_enabled=True,
        rate_limits=parse_rate_limits("upload=2/minute:100/minute"),
    )
    address = fresh_ip()
    first = TestClient(create_app(shared, migrate=False, run_jobs=False), client=(address, 1))
    second = TestClient(create_app(shared, migrate=False, run_jobs=False), client=(address, 2))
    with first, second:
        statuses = [
            c.post("/upload", files={"files": ("a", b"x")}).status_code
            for c in (first, second, first)
        ]
    assert statuses == [200, 200, 429]


def test_rate_limits_on_a_redis_that_is_down_answer_503(settings: Settings) -> None:
    down = settings.replace(redis_url=CLOSED_PORT_URL, rate_limits_enabled=True)
    with TestClient(create_app(down, migrate=False, run_jobs=False)) as client:
        answer = client.post("/upload", files={"files": ("a", b"x")})
    assert answer.status_code == 503, answer.text
    assert "retry-after" in answer.headers


def test_readyz_names_a_redis_that_is_down(settings: Settings, redis: Redis) -> None:
    with TestClient(create_app(settings.replace(redis_url=REDIS_URL), run_jobs=False)) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
    down = settings.replace(redis_url=CLOSED_PORT_URL)
    with TestClient(create_app(down, migrate=False, run_jobs=False)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["problems"] == ["redis: ConnectionError"]


def test_installations_sharing_a_redis_keep_their_state_apart(
    settings: Settings, redis: Redis, prefix: str
) -> None:
    """Two installations on one Redis database, each with its own SATCHEL_REDIS_PREFIX: the
    rate limits and the slots of one never count for the other."""
    from satchel.config import parse_rate_limits

    def installation(name: str) -> Settings:
        return settings.replace(
            redis_url=REDIS_URL,
            redis_prefix=f"{prefix}{name}:",
            rate_limits_enabled=True,
            rate_limits=parse_rate_limits("upload=1/minute:100/minute"),
            packages={"guest": {"concurrent_uploads": 1}},
        )

    address = fresh_ip()
    first = TestClient(create_app(installation("a"), run_jobs=False), client=(address, 1))
    second = TestClient(create_app(installation("b"), run_jobs=False), client=(address, 2))
    with first, second:
        statuses = [
            c.post("/upload", files={"files": ("a", b"x")}).status_code
            for c in (first, second, first)
        ]
    assert statuses == [200, 200, 429]
    keys = {key.decode() for key in redis.scan_iter(f"{prefix}*")}
    assert any(key.startswith(f"{prefix}a:limits") for key in keys), keys
    assert any(key.startswith(f"{prefix}b:limits") for key in keys), keys
    held = RedisSlots(redis, prefix=f"{prefix}a:slots:")
    slot = held.acquire(f"ip:{address}", 1)
    try:
        for name, expected in (("a", 429), ("b", 200)):
            unlimited = installation(name).replace(rate_limits_enabled=False)
            app = create_app(unlimited, run_jobs=False)
            with TestClient(app, client=(address, 3)) as client:
                answer = client.post("/upload", files={"files": ("a", b"x")})
            assert answer.status_code == expected, (name, answer.text)
    finally:
        held.release(slot)

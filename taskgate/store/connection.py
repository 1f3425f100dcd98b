"""Redis connections: the one place that builds taskgate's own client and arq's settings.

``TASKGATE_REDIS_URL`` takes a plain URL (``redis://``, ``rediss://`` for TLS, ``unix://``) or the
Sentinel form ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/service/db`` (``rediss+sentinel``
for TLS to the master). ``TASKGATE_REDIS_SENTINELS`` (``host:port,host:port``) with
``TASKGATE_REDIS_SENTINEL_SERVICE`` overrides the sentinels and service of the URL; the URL still
gives the user, password, TLS and db. Through Sentinel every new connection asks the sentinels
where the master is, so a connection dropped by a failover reconnects to the promoted replica."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import structlog
from arq.connections import RedisSettings as ArqRedisSettings
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskgate.settings import Settings

log = structlog.get_logger(__name__)

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme -> TLS to the master
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379
READY_TIMEOUT_S = 2.0
WAIT_BACKOFF_MAX_S = 5.0
# reply prefixes of a node that cannot take writes right now (a failover is under way)
FAILOVER_REPLIES = ("READONLY", "MASTERDOWN", "NOREPLICAS", "LOADING", "TRYAGAIN")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is: a plain URL, or sentinels + a service name (with the master's db and auth)."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False

    @property
    def via_sentinel(self) -> bool:
        return bool(self.sentinels)


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``host1:26379,host2`` -> ((host1, 26379), (host2, 26379)); ValueError on a bad entry."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":") if ":" in item else (item, "", str(DEFAULT_SENTINEL_PORT))
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad sentinel address {item!r}: expected host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("no sentinel address given")
    return tuple(out)


def parse_redis_url(url: str) -> RedisTarget:
    """The target of ``url``; ValueError with a clear message for a form taskgate does not take."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"Redis URL needs a scheme ({', '.join(PLAIN_SCHEMES)} or redis+sentinel)")
    if scheme in PLAIN_SCHEMES:
        parts = urlsplit(url)
        db = int(parts.path.lstrip("/") or 0) if scheme != "unix" and parts.path.lstrip("/").isdigit() else 0
        password = unquote(parts.password) if parts.password else None
        return RedisTarget(
            url=url, db=db, username=parts.username or None, password=password, ssl=scheme == "rediss"
        )
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"unknown Redis URL scheme {scheme!r}: use redis, rediss, unix or redis+sentinel")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise ValueError("redis+sentinel URL needs the service name: redis+sentinel://host:26379/mymaster/0")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ValueError("redis+sentinel URL path must be /<service>[/<db>]")
    return RedisTarget(
        url=url,
        sentinels=parse_sentinels(hosts),
        service=unquote(segments[0]),
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=unquote(user) or None,
        password=unquote(password) or None,
        ssl=SENTINEL_SCHEMES[scheme],
    )


def redis_target(settings: Settings) -> RedisTarget:
    target = parse_redis_url(settings.redis_url)
    if not settings.redis_sentinels:
        return target
    service = settings.redis_sentinel_service or target.service
    if not service:
        raise ValueError("TASKGATE_REDIS_SENTINELS needs TASKGATE_REDIS_SENTINEL_SERVICE")
    return RedisTarget(
        url=settings.redis_url,
        sentinels=parse_sentinels(settings.redis_sentinels),
        service=service,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
    )


class SentinelRedis(Redis):
    """A client of the master behind Sentinel; closing it closes its sentinel connections too."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        await close_sentinels(self)


async def close_sentinels(redis: Redis) -> None:
    """Close the sentinel connections behind a master client (arq's pools do not)."""
    manager = getattr(redis.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def _client_options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": 30,
    }


def redis_client(settings: Settings, **overrides: Any) -> Redis:
    """A client (not yet connected); decoded responses off (scripts decode)."""
    target = redis_target(settings)
    options = _client_options(settings) | overrides
    if not target.via_sentinel:
        return cast(Redis, Redis.from_url(target.url, **options))
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.redis_sentinel_password.get_secret_value():
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    sentinel_class: Any = Sentinel  # untyped in redis-py
    sentinel = sentinel_class(
        list(target.sentinels),
        sentinel_kwargs=sentinel_options,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.ssl,
        **options,
    )
    return cast(Redis, sentinel.master_for(target.service, redis_class=SentinelRedis))


def arq_redis_settings(settings: Settings) -> ArqRedisSettings:
    """arq's settings for the same target (arq builds its own client from them)."""
    target = redis_target(settings)
    if target.via_sentinel:
        return ArqRedisSettings(
            host=list(target.sentinels),
            sentinel=True,
            sentinel_master=target.service,
            database=target.db,
            username=target.username,
            password=target.password,
            ssl=target.ssl,
            conn_timeout=int(max(1, settings.redis_connect_timeout_s)),
        )
    return ArqRedisSettings.from_dsn(target.url)


def is_failover_error(exc: BaseException) -> bool:
    """A dropped connection, a timeout, or a node that cannot take writes now: worth a retry."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(FAILOVER_REPLIES)


async def redis_ready(redis: Redis, timeout_s: float = READY_TIMEOUT_S) -> tuple[bool, str]:
    """Whether ``redis`` reaches a master that takes writes: (True, "master") or (False, reason)."""
    try:
        role = await asyncio.wait_for(redis.role(), timeout_s)
    except TimeoutError:
        return False, "Redis did not answer in time"
    except (RedisError, OSError) as exc:
        return False, f"Redis unavailable: {exc.__class__.__name__}"
    kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    if kind != "master":
        return False, f"the Redis node is a {kind}, not the master (failover in progress?)"
    return True, "master"


async def wait_for_redis(redis: Redis, what: str, stop: asyncio.Event | None = None) -> bool:
    """Wait (backoff up to 5 s) until ``redis`` reaches a master; one log line when it has to wait.
    Returns False when ``stop`` was set first."""
    delay, announced = 0.1, False
    while stop is None or not stop.is_set():
        ok, reason = await redis_ready(redis)
        if ok:
            if announced:
                log.info("redis_available", process=what)
            return True
        if not announced:
            log.warning("redis_waiting", process=what, reason=reason)
            announced = True
        with contextlib.suppress(RedisError, OSError):
            await redis.connection_pool.disconnect(inuse_connections=False)  # next try: ask the sentinels
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, WAIT_BACKOFF_MAX_S)
    return False


async def create_redis(
    settings: Settings, what: str = "taskgate", stop: asyncio.Event | None = None
) -> Redis:
    """A connected client; waits for Redis (logging once) instead of failing at start-up."""
    redis = redis_client(settings)
    await wait_for_redis(redis, what, stop)
    return redis


async def redis_answers(where: str | Settings, timeout_s: float = 1.0) -> bool:
    """Whether Redis at ``where`` (a URL, or the target of some settings) answers a PING."""
    try:
        if isinstance(where, str):  # model_construct: only this URL, whatever the environment says
            where = Settings.model_construct(redis_url=where)
        options = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s}
        redis = redis_client(where, **options)
    except ValueError:
        return False
    try:
        return bool(await redis.ping())
    except (RedisError, OSError):
        return False
    finally:
        await redis.aclose()

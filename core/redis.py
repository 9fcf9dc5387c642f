"""The Redis connection (redis-py asyncio), made the same way in every process."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.driver_info import DriverInfo

# redis-py reads its own version from the installed package metadata for every new
# connection (to send CLIENT SETINFO) unless told; read it once, at import.
_DRIVER_INFO = DriverInfo()


# redis-py's asyncio ConnectionPool opens at most 100 connections (its default since 8.0) and,
# past that, fails the command at once with MaxConnectionsError ("Too many connections")
# instead of waiting for one (redis/redis-py#2517). The orchestrator runs one coroutine per bot
# in a reconcile pass, so a 1,000-bot mass start failed random Redis writes, among them the
# record naming a freshly forked worker (which then stopped itself as an orphan 30 s later:
# docs/orchestrator.md, "Crash -> replacement latency"). A BlockingConnectionPool waits for
# a free connection instead, up to POOL_WAIT_S.
MAX_CONNECTIONS = 100
POOL_WAIT_S = 10.0


def connect(
    url: str, *, blocking_s: float = 0.0, max_connections: int = MAX_CONNECTIONS
) -> aioredis.Redis:
    """A client with short timeouts and retries, decoding responses to str; at most
    `max_connections` connections, commands beyond them wait for one (up to POOL_WAIT_S).
    `blocking_s`: the longest BLOCK its commands ask for (a client of its own for a blocking
    read): the socket timeout is that much longer than the usual 5 s."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5 + blocking_s,
        health_check_interval=30,
        retry_on_timeout=True,
        driver_info=_DRIVER_INFO,
    )
    return aioredis.Redis.from_pool(pool)


async def ping(client: aioredis.Redis) -> tuple[bool, str]:
    """(reachable, detail) for health checks."""
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return False, type(exc).__name__
    return True, "ok"

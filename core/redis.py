"""The Redis connection (redis-py asyncio), made the same way in every process."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.driver_info import DriverInfo

# redis-py reads its own version from the installed package metadata for every new
# connection (to send CLIENT SETINFO) unless told; read it once, at import.
_DRIVER_INFO = DriverInfo()


def connect(url: str) -> aioredis.Redis:
    """A client with short timeouts and retries, decoding responses to str."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
        driver_info=_DRIVER_INFO,
    )


async def ping(client: aioredis.Redis) -> tuple[bool, str]:
    """(reachable, detail) for health checks."""
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return False, type(exc).__name__
    return True, "ok"

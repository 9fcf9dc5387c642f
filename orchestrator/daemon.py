"""The orchestrator's main loop: node heartbeat (seen by /api/status) and periodic passes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

import redis.asyncio as aioredis

from core import redis as core_redis
from core.db import close_db, init_db
from core.settings import Settings
from fleet import keys

log = logging.getLogger("orchestrator")

HEARTBEAT_EVERY_S = 5


def node_name() -> str:
    """This node's name in Redis: ORCHESTRATOR_NODE, or the host name."""
    return os.environ.get("ORCHESTRATOR_NODE") or socket.gethostname()


async def heartbeat(redis: aioredis.Redis, node: str) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.set(keys.orchestrator_heartbeat(node), f"{time.time():.3f}", ex=keys.ORCHESTRATOR_TTL)
    pipe.sadd(keys.ORCHESTRATOR_NODES, node)
    await pipe.execute()


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await init_db(settings.database_url)
    redis = core_redis.connect(settings.redis_url)
    node = node_name()
    log.info("orchestrator node %s started", node)
    try:
        while not stop.is_set():
            try:
                await heartbeat(redis, node)
            except Exception as exc:  # noqa: BLE001 - Redis restarts: keep going, report it
                log.warning("heartbeat to Redis failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_EVERY_S)
            except TimeoutError:
                pass
    finally:
        log.info("orchestrator node %s stopping", node)
        await redis.aclose()
        await close_db()

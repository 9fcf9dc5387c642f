"""A worker whose READY arrives before the orchestrator has recorded its pid (a mass start:
the orchestrator writes the record right after the fork, and that can take longer than the
login) is online as soon as the record names it, not a whole beat (10 s) later."""

from __future__ import annotations

import asyncio
import os
import time

import redis.asyncio as aioredis

from core import redis as core_redis
from fleet import keys
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from worker.lifecycle import Lifecycle

IID = 4242


class _Bot:
    """What `Lifecycle.beat_once` reads of a disnake bot."""

    latency = 0.04
    guilds: list[object] = []
    session_start_limit = None


async def test_online_is_written_soon_after_the_record_names_the_worker(redis_url):
    redis = core_redis.connect(redis_url)
    store = RuntimeStore(redis)
    life = Lifecycle(IID, store, beat_every=10.0, gateway_grace=120.0, locale="pt-BR")
    life.ready = True  # READY came; the record does not name this process yet
    await store.transition(IID, InstanceState.STARTING, pid=os.getpid() + 1)
    beats = asyncio.create_task(life.heartbeat_loop(_Bot()))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.3)
        assert (await store.get(IID)).state == InstanceState.STARTING
        # the orchestrator records the fork (what orchestrator.supervisor._fork writes)
        named = time.monotonic()
        raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
        await raw.hset(keys.runtime(IID), mapping={"pid": os.getpid()})
        await raw.aclose()
        deadline = named + 5.0
        while (await store.get(IID)).state != InstanceState.ONLINE:
            assert time.monotonic() < deadline, "online not written within 5 s (beat is 10 s)"
            await asyncio.sleep(0.05)
        assert time.monotonic() - named < 2.5
    finally:
        life.closing = True
        life.wake.set()
        await asyncio.wait_for(beats, 5)
        await redis.aclose()

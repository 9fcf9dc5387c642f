"""Reading an instance's delivery stream: new entries (XREADGROUP), entries a dead consumer
read but never acknowledged (XAUTOCLAIM), and this consumer's own unacknowledged entries
after a Redis outage. Each entry goes to `on_entry` (the `DeliveryConsumer`).

An idle bot waits in Redis: a new entry wakes the read at once, so how long a read blocks
only sets how often an idle worker wakes. The read blocks until the next re-claim is due
(half the claim idle time, at most 15 s) on a connection of its own, whose socket timeout is
that much longer than the shared client's 5 s. An idle worker then reads twice and re-claims
twice per 30 s; reading every second was most of an idle fleet's CPU (1,000 bots: 1,000
reads/s), every 3 s still a third of it (issue 14).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from core import redis as core_redis
from fleet import keys

log = logging.getLogger("worker.storefront.delivery")
RECONNECT_DELAYS = (0.2, 2.0)  # after a Redis error: first wait, longest wait
# XREADGROUP's answer (decoded): [(stream, [(entry id, fields), ...]), ...]
_StreamRead = list[tuple[str, list[tuple[str, dict[str, str]]]]]
OnEntry = Callable[[str, dict[str, str]], None]


def cadence(claim_idle_s: float) -> tuple[float, int]:
    """(seconds between re-claims, the read's BLOCK in ms) for a claim idle time: an entry a
    dead consumer left is taken over at most 1.5 x the idle time after it was read."""
    claim_every = min(15.0, claim_idle_s / 2)
    return claim_every, max(100, int(claim_every * 1000))


class StreamReader:
    def __init__(
        self,
        shared: aioredis.Redis,
        redis_url: str,
        stream: str,
        consumer: str,
        claim_idle_s: float,
        on_entry: OnEntry,
    ) -> None:
        self.shared = shared  # acknowledgements of trimmed entries
        self.redis_url = redis_url
        self.stream = stream
        self.consumer = consumer
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.claim_every, self.block_ms = cadence(claim_idle_s)
        self.on_entry = on_entry

    async def run(self, closed: Callable[[], bool]) -> None:
        """Read, re-claim and hand entries on until `closed()`. A Redis outage or restart
        costs a short wait (0.2 s, doubling to 2 s), never the loop: then the group is made
        again if Redis came back empty, and this consumer's own unacknowledged entries (read
        just before the outage) are handed on first."""
        reader = core_redis.connect(
            self.redis_url, blocking_s=self.block_ms / 1000, max_connections=1
        )
        delay, outage = RECONNECT_DELAYS[0], False
        try:
            while not closed():
                try:
                    await self.ensure_group(reader)
                    if outage:
                        await self.read_own_pending(reader)
                        outage = False
                    await self.consume(reader, closed)
                except (RedisError, OSError) as exc:
                    if isinstance(exc, ResponseError) and "NOGROUP" not in str(exc):
                        raise
                    log.warning(
                        "delivery stream unreachable (%s): retrying in %.1f s",
                        type(exc).__name__,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay, outage = min(RECONNECT_DELAYS[1], delay * 2), True
                    continue
                delay = RECONNECT_DELAYS[0]
        finally:
            await asyncio.shield(reader.aclose())

    async def ensure_group(self, reader: aioredis.Redis) -> None:
        try:
            await reader.xgroup_create(self.stream, keys.DELIVERY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def consume(self, reader: aioredis.Redis, closed: Callable[[], bool]) -> None:
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while not closed():
            if loop.time() - last_claim >= self.claim_every:
                last_claim = loop.time()
                await self.claim_stale(reader)
            batches = await reader.xreadgroup(
                keys.DELIVERY_GROUP,
                self.consumer,
                {self.stream: ">"},
                count=16,
                block=self.block_ms,
            )
            self._hand_on(batches)

    async def read_own_pending(self, reader: aioredis.Redis) -> None:
        """Entries Redis handed to this consumer whose answer the outage may have eaten
        (a duplicate of one still in hand is harmless: the delivery is recorded once)."""
        batches = await reader.xreadgroup(
            keys.DELIVERY_GROUP, self.consumer, {self.stream: "0"}, count=100
        )
        self._hand_on(batches)

    def _hand_on(self, batches: object) -> None:
        # the client decodes responses to str (core.redis: decode_responses=True)
        for _, entries in cast(_StreamRead, batches) or []:
            for entry_id, fields in entries:
                if fields:
                    self.on_entry(entry_id, fields)

    async def claim_stale(self, reader: aioredis.Redis) -> None:
        """Take over entries another (dead) consumer read but never acknowledged."""
        start = "0-0"
        while True:
            start, claimed, *_ = await reader.xautoclaim(
                self.stream,
                keys.DELIVERY_GROUP,
                self.consumer,
                self.claim_idle_ms,
                start_id=start,
                count=50,
            )
            for entry_id, fields in claimed:
                if fields:
                    log.info("re-claimed delivery entry %s", entry_id)
                    self.on_entry(entry_id, fields)
                else:  # trimmed away: nothing to deliver
                    await self.shared.xack(self.stream, keys.DELIVERY_GROUP, entry_id)
            if start in ("0-0", b"0-0"):
                return

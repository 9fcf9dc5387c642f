"""Stuck workers: no heartbeat for `stuck_after` s means replace the worker; a live worker
whose runtime record is gone (Redis restarted without persistence) gets it rewritten.

Silence counts only while the orchestrator could see Redis. When it could not (Redis paused
or restarting: a read that failed, or one that took half the stuck window; the orchestrator
itself paused: no read for that long), no worker could have written a heartbeat either, so
every worker's silence is counted from the first read after that, not from its last beat.
Without this, a Redis pause longer than the window made every worker look stuck at once and
the orchestrator killed workers that were answering buyers, or were just writing their exit
note (a worker that stopped on its own lease clock was recorded as a `stuck` crash)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from fleet import keys
from fleet.crashpolicy import PolicyConfig
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from orchestrator.worker_table import Worker

log = logging.getLogger("orchestrator")
S = InstanceState

# How many workers one look reads before the event loop runs anything else: a 2,000-worker
# pass read as one pipeline of 4,000 commands held the loop ~100 ms every 5 s, and a crash
# that fell into it waited for its replacement that long (issue 14: crash -> replacement p90).
CHUNK = 250
# For each record in KEYS: 1 if it has its `state` field, else 0 (one reply for the chunk).
_HAS_STATE = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HEXISTS', key, 'state') end
return out
"""


class HealthCheck:
    def __init__(
        self, redis: aioredis.Redis, store: RuntimeStore, node: str, policy: PolicyConfig
    ) -> None:
        self.redis, self.store, self.node, self.policy = redis, store, node, policy
        # how often the daemon looks, and the gap in reads that means it could not look
        self.period = max(0.2, min(5.0, policy.stuck_after / 4))
        self.blind_after = max(policy.stuck_after / 2, 2 * self.period)
        self.read_at = time.time()  # the end of the last read that answered
        self.seen_from = 0.0  # silence before this is not counted (see the module's doc)

    async def check(self, workers: Iterable[Worker], replace: Callable[[Worker], None]) -> None:
        """Call `replace` for each worker (not being stopped) without a recent heartbeat;
        rewrite the records that are missing."""
        live = [w for w in workers if w.stopping is None]
        if not live:
            self.read_at = time.time()  # nothing to read: the next worker is not a gap
            return
        for start in range(0, len(live), CHUNK):
            if start:
                await asyncio.sleep(0)  # a crash's replacement runs between chunks
            await self._check_chunk(live[start : start + CHUNK], replace)

    async def _check_chunk(self, live: list[Worker], replace: Callable[[Worker], None]) -> None:
        # two replies for the chunk (MGET, one script) instead of two per worker
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget([keys.heartbeat(w.instance_id) for w in live])
        pipe.eval(_HAS_STATE, len(live), *[keys.runtime(w.instance_id) for w in live])
        sent = time.time()
        beats, has_state = await pipe.execute()
        now = time.time()
        if max(now - sent, sent - self.read_at) > self.blind_after:
            log.warning(
                "could not look at Redis for %.1f s: workers' silence counts from now on",
                now - self.read_at,
            )
            self.seen_from = now
        self.read_at = now
        for w, beat, state in zip(live, beats, has_state, strict=True):
            last = max(float(beat) if beat else 0.0, w.spawned_at)
            if now - max(last, self.seen_from) > self.policy.stuck_after:
                log.warning(
                    "instance %s: no heartbeat for %.0f s; replacing worker %s",
                    w.instance_id,
                    now - last,
                    w.pid,
                    extra={"instance_id": w.instance_id},
                )
                replace(w)
            elif not int(state):  # Redis lost our record (restart without persistence)
                await self._repair(w, online=beat is not None)

    async def _repair(self, worker: Worker, online: bool) -> None:
        log.warning("instance %s: runtime record missing; rewriting it", worker.instance_id)
        await self.store.transition(
            worker.instance_id,
            S.ONLINE if online else S.STARTING,
            pid=worker.pid,
            pid_start=worker.start,
            node=self.node,
            config_version=worker.config_version,
            spawned_at=f"{worker.spawned_at:.3f}",
        )

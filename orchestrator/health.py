"""Stuck workers: no heartbeat for `stuck_after` s means replace the worker; a live worker
whose runtime record is gone (Redis restarted without persistence) gets it rewritten."""

from __future__ import annotations

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


class HealthCheck:
    def __init__(
        self, redis: aioredis.Redis, store: RuntimeStore, node: str, policy: PolicyConfig
    ) -> None:
        self.redis, self.store, self.node, self.policy = redis, store, node, policy

    async def check(self, workers: Iterable[Worker], replace: Callable[[Worker], None]) -> None:
        """Call `replace` for each worker (not being stopped) without a recent heartbeat;
        rewrite the records that are missing."""
        live = [w for w in workers if w.stopping is None]
        if not live:
            return
        pipe = self.redis.pipeline(transaction=False)
        for w in live:
            pipe.get(keys.heartbeat(w.instance_id))
            pipe.hget(keys.runtime(w.instance_id), "state")
        values = await pipe.execute()
        now = time.time()
        for index, w in enumerate(live):
            beat, state = values[2 * index], values[2 * index + 1]
            last = max(float(beat) if beat else 0.0, w.spawned_at)
            if now - last > self.policy.stuck_after:
                log.warning(
                    "instance %s: no heartbeat for %.0f s; replacing worker %s",
                    w.instance_id,
                    now - last,
                    w.pid,
                    extra={"instance_id": w.instance_id},
                )
                replace(w)
            elif state is None:  # Redis lost our record (restart without persistence)
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

"""The orchestrator's look at its workers (orchestrator.health) against a real Redis: a worker
without a recent heartbeat is replaced, a live one whose record Redis lost gets it back, the
others are left alone, and a fleet larger than one chunk is read in chunks (issue 14: one
4,000-command pipeline at 2,000 workers held the event loop ~100 ms)."""

from __future__ import annotations

import time

from fleet import keys
from fleet.crashpolicy import PolicyConfig
from fleet.runtime import RuntimeStore
from orchestrator import health
from orchestrator.health import HealthCheck
from orchestrator.worker_table import Worker


async def test_health_check_replaces_the_silent_repairs_the_lost_and_reads_in_chunks(
    redis_client, monkeypatch
):
    monkeypatch.setattr(health, "CHUNK", 7)  # 30 workers: five chunks
    redis = redis_client
    now = time.time()
    long_ago = now - 600
    workers = [Worker(i, 10_000 + i, None, long_ago) for i in range(1, 31)]
    silent = {3, 11, 29}  # no heartbeat since they were spawned 600 s ago
    lost = {8, 22}  # beating, but Redis lost their records
    fresh = Worker(31, 10_031, None, now)  # just spawned: no heartbeat yet, not stuck
    for w in workers:
        if w.instance_id not in silent:
            await redis.set(keys.heartbeat(w.instance_id), f"{now:.3f}")
        if w.instance_id not in lost:
            await redis.hset(keys.runtime(w.instance_id), mapping={"state": "online"})
    await redis.hset(keys.runtime(31), mapping={"state": "starting"})
    stopping = Worker(32, 10_032, None, long_ago, stopping="stop")  # being stopped: not looked at

    check = HealthCheck(redis, RuntimeStore(redis), "node-a", PolicyConfig(stuck_after=60))
    replaced: list[int] = []
    await check.check([*workers, fresh, stopping], lambda w: replaced.append(w.instance_id))

    assert sorted(replaced) == sorted(silent)
    for iid in lost:
        record = await redis.hgetall(keys.runtime(iid))
        assert record["state"] == "online" and record["node"] == "node-a", record
        assert record["pid"] == str(10_000 + iid)
    assert await redis.hget(keys.runtime(31), "state") == "starting"
    assert not await redis.exists(keys.runtime(32))

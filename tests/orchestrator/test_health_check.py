"""The orchestrator's look at its workers (orchestrator.health) against a real Redis: a worker
without a recent heartbeat is replaced, a live one whose record Redis lost gets it back, the
others are left alone, and a fleet larger than one chunk is read in chunks (issue 14: one
4,000-command pipeline at 2,000 workers held the event loop ~100 ms)."""

from __future__ import annotations

import asyncio
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


async def test_silence_while_the_orchestrator_could_not_read_redis_is_not_counted(
    redis_client, monkeypatch
):
    """A Redis pause longer than the stuck window (CI saw it: a worker stopped by its own lease
    clock was killed as `stuck` while writing its exit note) must not make every worker look
    stuck: silence counts from the first read after the gap, and a worker still silent a
    whole window after that is replaced."""
    redis = redis_client
    now = time.time()
    worker = Worker(1, 10_001, None, now - 600)
    await redis.set(keys.heartbeat(1), f"{now - 5:.3f}")  # silent since Redis stopped answering
    await redis.hset(keys.runtime(1), mapping={"state": "online"})
    check = HealthCheck(redis, RuntimeStore(redis), "node-a", PolicyConfig(stuck_after=1.0))
    replaced: list[int] = []

    check.read_at = now - 10  # the orchestrator's reads failed for 10 s
    await check.check([worker], lambda w: replaced.append(w.instance_id))
    await check.check([worker], lambda w: replaced.append(w.instance_id))
    assert replaced == []

    # the daemon looks every `period` (the worker has not been silent a window yet)...
    for _ in range(2):
        await asyncio.sleep(check.period)
        await check.check([worker], lambda w: replaced.append(w.instance_id))
    assert replaced == []
    # ...then Redis holds a read for more than half the window (CLIENT PAUSE): the worker has
    # now been silent longer than the window, but not while Redis could be written
    real_pipeline = redis.pipeline

    def slow_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        execute = pipe.execute

        async def held(*a, **k):
            await asyncio.sleep(0.6)
            return await execute(*a, **k)

        pipe.execute = held
        return pipe

    monkeypatch.setattr(redis, "pipeline", slow_pipeline)
    await check.check([worker], lambda w: replaced.append(w.instance_id))
    assert replaced == []
    monkeypatch.setattr(redis, "pipeline", real_pipeline)
    assert check.seen_from > time.time() - 0.1

    # Redis answers promptly now, the daemon looks every `period`: a window later, the worker
    # that is still silent is stuck
    for _ in range(int(1.1 / check.period) + 1):
        await asyncio.sleep(check.period)
        await check.check([worker], lambda w: replaced.append(w.instance_id))
        if replaced:
            break
    assert replaced == [1]

"""Node-wide commands run from a shell: `python -m orchestrator stop-all` (the CLI's
`vitrine fleet stop`). With a live orchestrator it goes through the control stream (the daemon
drains: stops every worker and starts none until it restarts); without one it stops the
workers itself, found through their runtime records (pid + start time)."""

from __future__ import annotations

import asyncio
import signal
import time

import redis.asyncio as aioredis

from core import redis as core_redis
from core.errors import IllegalTransition
from core.settings import Settings
from fleet import keys
from fleet.control_protocol import Action, ControlTimeout, send_command
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from orchestrator.zygote_client import is_same_process, send_signal

HEARTBEAT_EVERY_S = 5  # orchestrator.daemon's period (not imported: keep this module light)


async def _live_workers(redis: aioredis.Redis, node: str) -> list[tuple[int, int, int]]:
    """(instance_id, pid, start) of this node's workers that are still running."""
    found = []
    async for key in redis.scan_iter(match=keys.runtime(0).replace(":0:", ":*:"), count=500):
        raw = await redis.hmget(key, ["pid", "pid_start", "node"])
        pid, start, owner = raw
        if pid and start and owner in (None, node) and is_same_process(int(pid), int(start)):
            found.append((int(key.split(":")[2]), int(pid), int(start)))
    return found


async def stop_directly(redis: aioredis.Redis, node: str, grace: float) -> int:
    workers = await _live_workers(redis, node)
    for _, pid, start in workers:
        send_signal(pid, signal.SIGTERM, start)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:  # not our children: poll /proc
        if not any(is_same_process(p, s) for _, p, s in workers):
            break
        await asyncio.sleep(0.1)
    store = RuntimeStore(redis)
    for iid, pid, start in workers:
        send_signal(pid, signal.SIGKILL, start)
        try:
            await store.transition(iid, InstanceState.STOPPED, pid=None, next_start_at=None)
        except IllegalTransition:
            pass
    return len(workers)


async def stop_all(settings: Settings, node: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
    redis = core_redis.connect(settings.redis_url)
    try:
        beat = await redis.get(keys.orchestrator_heartbeat(node))
        if beat and time.time() - float(beat) < 3 * HEARTBEAT_EVERY_S:
            try:
                res = await send_command(
                    redis, Action.STOP_ALL, 0, actor="cli:stop-all", timeout=timeout, node=node
                )
                return f"orchestrator: {res.message}"
            except ControlTimeout:
                pass  # heartbeat key of a dead orchestrator: do it ourselves
        count = await stop_directly(redis, node, grace=min(timeout, 10.0))
        return f"stopped {count} worker(s) directly"
    finally:
        await redis.aclose()

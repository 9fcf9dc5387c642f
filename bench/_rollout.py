"""The fleet bench's rollout: bots switched on at a pace, and only while memory lasts
(`bench/fleet_orchestrator.py`)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import redis.asyncio as aioredis

from bench._memory import GiB, mem_available
from bench._world import pct

# how long the rollout waits for the projected MemAvailable to come back above the floor
PATIENCE_S = 20.0


class Rollout:
    args: argparse.Namespace

    async def online(self, redis: aioredis.Redis, ids: list[int]) -> dict[int, dict[str, str]]:
        raise NotImplementedError

    async def online_count(self, redis: aioredis.Redis, ids: list[int]) -> int:
        raise NotImplementedError

    async def set_running(self, redis: aioredis.Redis, ids: list[int], running: bool) -> None:
        raise NotImplementedError

    def headroom(self, online: int, enabled: int) -> float:
        """MemAvailable left once every bot switched on but not online yet has grown to a
        full bot (`--mem-per-bot-mib`): a starting worker is still growing, and a 2,000-bot
        attempt that only watched MemAvailable itself ran the box out of memory (see
        docs/benchmarks.md, "Density")."""
        return mem_available() - (enabled - online) * self.args.mem_per_bot_mib * 2**20

    async def rollout(self, redis: aioredis.Redis, ids: list[int]) -> list[int]:
        """Switch the bots on, `--spawn-rate` per second, while the projected MemAvailable
        stays above the floor (waiting up to PATIENCE_S for it to come back); then wait for
        them, switching off the ones not online yet when MemAvailable itself falls below the
        floor or the projection stays below it for PATIENCE_S. Returns the bots held online."""
        floor = self.args.mem_floor_gib * GiB
        batch = max(1, int(self.args.spawn_rate))
        enabled: list[int] = []
        for start in range(0, len(ids), batch):
            online = await self.online_count(redis, enabled) if enabled else 0
            # a bot just online still holds its start-up copies until it gives them back
            # (worker.page_share, 2 s after READY): wait for the projection to come back
            # before giving up on the rest
            waited = 0.0
            while self.headroom(online, len(enabled) + batch) < floor and waited < PATIENCE_S:
                await asyncio.sleep(1.0)
                waited += 1.0
                online = await self.online_count(redis, enabled)
            if self.headroom(online, len(enabled) + batch) < floor:
                print(
                    f"MemAvailable would fall below {self.args.mem_floor_gib} GiB: no bot "
                    f"switched on after {len(enabled)} ({online} online)",
                    flush=True,
                )
                break
            chunk = ids[start : start + batch]
            await self.set_running(redis, chunk, True)
            enabled += chunk
            await asyncio.sleep(1.0)
        deadline = time.monotonic() + self.args.timeout
        short_since: float | None = None
        while time.monotonic() < deadline:
            count = await self.online_count(redis, enabled)
            if count == len(enabled):
                break
            short = self.headroom(count, len(enabled)) < floor
            short_since = (short_since or time.monotonic()) if short else None
            if mem_available() < floor or (
                short_since is not None and time.monotonic() - short_since > PATIENCE_S
            ):
                recs = await self.online(redis, enabled)
                late = [i for i in enabled if i not in recs]
                print(
                    f"MemAvailable would fall below {self.args.mem_floor_gib} GiB with "
                    f"{len(recs)} online: switching {len(late)} waiting bot(s) off",
                    flush=True,
                )
                await self.set_running(redis, late, False)
                enabled = sorted(recs)
                break
            await asyncio.sleep(0.25)
        return enabled


def start_summary(recs: dict[int, dict[str, str]], wall0: float, step: float = 5.0) -> None:
    """When the bots came online after the orchestrator started (at `wall0`), and the CPU a
    worker spent from its fork to online (`start_cpu_ms`, written by the worker)."""
    spawned = sorted(float(r["spawned_at"]) for r in recs.values())
    ready = sorted(float(r["online_since"]) for r in recs.values())
    print(
        f"  first spawn {spawned[0] - wall0:.1f} s after the orchestrator started (its start "
        f"and the zygote's preload); half online after {ready[len(ready) // 2] - wall0:.1f} s, "
        f"all after {ready[-1] - wall0:.1f} s",
        flush=True,
    )
    # spawns and READYs per `step` seconds: a start limited by the supply of spawns (the
    # orchestrator) looks different from one limited by the CPU (READYs lag the spawns)
    buckets = int(max(ready[-1], spawned[-1]) - wall0) // int(step) + 1
    spawns, readies = [0] * buckets, [0] * buckets
    for at in spawned:
        spawns[int((at - wall0) // step)] += 1
    for at in ready:
        readies[int((at - wall0) // step)] += 1
    print(f"  per {step:g} s after the orchestrator started: spawned {spawns}", flush=True)
    print(f"  per {step:g} s after the orchestrator started: online  {readies}", flush=True)
    start_cpu = [float(r["start_cpu_ms"]) for r in recs.values() if "start_cpu_ms" in r]
    if start_cpu:
        print(
            f"  a worker's CPU from its fork to online: p50 {statistics.median(start_cpu):.1f} "
            f"ms, p90 {pct(start_cpu, 90):.1f} ms",
            flush=True,
        )

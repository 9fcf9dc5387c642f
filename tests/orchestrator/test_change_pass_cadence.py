"""The change pass runs again at once after a pass that took longer than its period (a pass
that starts hundreds of bots): waiting the whole period after it left the CPU idle in the
middle of a mass start while the bots switched on meanwhile waited (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import time

from orchestrator.daemon import _every


async def _starts(from_start: bool, step_s: float, period: float, rounds: int) -> list[float]:
    stop = asyncio.Event()
    began: list[float] = []

    async def step() -> None:
        began.append(time.monotonic())
        if len(began) == rounds:
            stop.set()
        await asyncio.sleep(step_s)

    await asyncio.wait_for(_every(stop, period, "test pass", step, from_start=from_start), 10)
    return [b - a for a, b in zip(began, began[1:], strict=False)]


async def test_a_long_pass_is_followed_by_the_next_at_once():
    gaps = await _starts(True, step_s=0.3, period=0.2, rounds=4)
    assert all(gap < 0.42 for gap in gaps), gaps  # 0.3 s each, not 0.3 + 0.2


async def test_a_short_pass_still_waits_out_its_period():
    gaps = await _starts(True, step_s=0.02, period=0.25, rounds=4)
    assert all(0.22 < gap < 0.45 for gap in gaps), gaps


async def test_other_loops_still_wait_a_whole_period_after_each_round():
    gaps = await _starts(False, step_s=0.1, period=0.2, rounds=3)
    assert all(gap >= 0.29 for gap in gaps), gaps

"""The worker's side of fencing (worker.fence_guard): a refused write stops it once, and a worker
that cannot renew its lease for a TTL stops itself before the lease can lapse."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from fleet.errors import FencedOut
from fleet.fencing import Fence
from worker.fence_guard import FenceGuard, LeaseClock


def test_fencing_guard_stops_the_worker_and_logs_one_line(caplog):
    stops: list[int] = []
    guard = FenceGuard(Fence(1, 5))
    with caplog.at_level(logging.WARNING, logger="worker"):
        guard.refuse(FencedOut(1, 5, 6))  # before the lifecycle attached: remembered
        guard.on_refused(lambda: stops.append(1))
        guard.refuse(FencedOut(1, 5, 7))
    assert len(stops) == 2 and guard.refused is not None and guard.refused.seen == 6
    assert [r.getMessage() for r in caplog.records].count(
        "write refused by the database (instance 1: fencing token 5 refused, 6 seen): "
        "stopping, fenced off"
    ) == 1
    assert len(caplog.records) == 1


async def test_fencing_lease_clock_stops_a_worker_that_cannot_renew_before_the_ttl():
    clock = LeaseClock(0.5)
    stopped: list[float] = []
    start = time.monotonic()
    await asyncio.wait_for(clock.watch(lambda: stopped.append(time.monotonic()), lambda: False), 2)
    assert clock.expired and len(stopped) == 1
    assert 0.5 - clock.step <= stopped[0] - start <= 0.5 + clock.step


async def test_fencing_lease_clock_leaves_a_renewing_worker_alone():
    clock = LeaseClock(0.5)
    stopped: list[int] = []
    closing = False

    async def renew() -> None:
        for _ in range(15):  # 1.5 s: three TTLs of renewals every 0.1 s
            clock.renewed(time.monotonic())
            await asyncio.sleep(0.1)

    watch = asyncio.create_task(clock.watch(lambda: stopped.append(1), lambda: closing))
    await renew()
    closing = True
    await asyncio.wait_for(watch, 1)
    assert not stopped and not clock.expired


async def test_fencing_lease_clock_woken_past_its_deadline_stops_whoever_looks_first():
    """A paused worker (SIGSTOP, a frozen VM) wakes with every timer due at once; the clock
    sleeps until its deadline, so the heartbeat may run first. Its look (the first thing
    `Lifecycle.beat_once` does) stops the worker once, and a later renewal cannot undo it."""
    clock = LeaseClock(0.5)
    stopped: list[int] = []
    assert not clock.expire_if_overdue(lambda: stopped.append(1))  # fresh: not yet
    clock.renewed_at -= 5  # as if frozen for ten TTLs
    assert clock.expire_if_overdue(lambda: stopped.append(1))
    clock.renewed(time.monotonic())  # a stale beat's confirmation arrives after
    assert clock.expire_if_overdue(lambda: stopped.append(1))
    await asyncio.wait_for(clock.watch(lambda: stopped.append(2), lambda: False), 1)
    assert stopped == [1] and clock.expired


async def test_fencing_lease_clock_never_wakes_while_renewals_come(monkeypatch):
    """An idle worker's clock does not wake at all while its beats renew the lease (2,000 idle
    workers woke 2,000 times a second for it, then once per renewal window each); once the
    renewals stop it stops the worker within the TTL."""
    clock = LeaseClock(0.5)
    looks: list[float] = []
    look = clock.expire_if_overdue

    def counted(stop):
        looks.append(time.monotonic())
        return look(stop)

    monkeypatch.setattr(clock, "expire_if_overdue", counted)
    stopped: list[float] = []
    watch = asyncio.create_task(
        clock.watch(lambda: stopped.append(time.monotonic()), lambda: False)
    )
    for _ in range(15):  # 1.5 s: three TTLs of renewals every 0.1 s
        clock.renewed(time.monotonic())
        await asyncio.sleep(0.1)
    assert len(looks) == 1 and not stopped  # the first look only
    last = clock.renewed_at
    await asyncio.wait_for(watch, 1)  # no more renewals: it stops the worker
    assert len(stopped) == 1 and clock.expired
    assert stopped[0] - last == pytest.approx(0.5 - clock.step, abs=0.1)

"""A node paused (SIGSTOP on its orchestrator and every worker, as in a VM freeze) for three
lease TTLs, then resumed: the other node took its bots, the woken workers stop without
delivering anything (their writes carry a token the database has already seen surpassed),
and every order paid meanwhile is delivered exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from tortoise.transactions import in_transaction

from fleet import fencing, keys
from fleet.errors import FencedOut
from fleet.fencing import Fence
from ops.fleet_harness import node_processes
from tests.multihost.world import (
    a_has_delivered,
    check_invariants,
    delivered_from,
    lease_token,
    wait_gone,
)

pytestmark = [pytest.mark.multihost, pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_paused_node_wakes_fenced_off_and_delivers_nothing(world):
    w = world
    on_a = await w.on_a()
    a_fences = {i: Fence.from_lease(i, (await w.a.record(i)).lease) for i in on_a}
    load = w.load()
    await a_has_delivered(w)  # A delivered some orders before the pause
    frozen = node_processes(w.a.node)  # orchestrator, zygote, workers
    assert set(on_a.values()) <= set(frozen)
    paused_at = time.time()
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        await w.b_takes_over(on_a, paused_at)
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    left = await wait_gone(list(on_a.values()), timeout=30)
    assert not left, f"A's workers {left} still run after waking"
    await load
    await check_invariants(w)
    # anything a woken worker sent reached the sandbox after it woke (+ the in-flight margin)
    assert not await delivered_from(w, "a", paused_at + 0.5), "a woken worker delivered"
    refused = await _database_saw_the_new_owner(w, a_fences)
    exits = {iid: (await w.a.redis.hgetall(keys.exit_info(iid))).get("code") for iid in on_a}
    for iid in on_a:  # fenced off (LEASE_LOST, or let go by its own node): not a crash
        assert not (await w.b.record(iid)).crashes, iid
    print(f"A's workers: exit codes {exits}, writes refused {refused}")


async def _database_saw_the_new_owner(w, a_fences: dict[int, Fence | None]) -> dict[int, int]:
    """The database's fencing mark (`fleet.fencing.high_water`) holds B's token for every
    moved bot, and a write carrying A's token (what a woken A worker would send first) is
    refused in its own transaction. Returns the writes refused per moved bot so far (a woken
    worker usually stops on its own lease clock before it writes at all)."""
    for iid, fence in a_fences.items():
        held = lease_token(await w.b.redis.get(keys.lease(iid)))
        assert fence is not None and held > fence.token, (iid, fence, held)
        assert await fencing.high_water(iid) >= held, iid
        with pytest.raises(FencedOut):
            async with in_transaction() as conn:
                await fencing.check(conn, fence)
    return {iid: await fencing.refusals(iid) for iid in a_fences}

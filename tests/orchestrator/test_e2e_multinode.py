"""End to end: two orchestrator nodes on one database and one Redis (as on two machines).
Every bot runs exactly once; a dead machine's bots move to the live node; a node whose
orchestrator alone died keeps its bots; a fenced-off worker stops; control commands reach the
node that runs the bot."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import pytest

from fleet import keys
from fleet.control_protocol import mark_dirty, send_command
from fleet.leases import Lease
from fleet.models import BotInstance
from fleet.states import DesiredState, InstanceState
from ops.fleet_harness import Fleet, alive, node_processes, split_node_names

pytestmark = pytest.mark.e2e
S = InstanceState
TTL = 3.0


@pytest.fixture
def fleet_env() -> dict[str, str]:
    return {"VITRINE_LEASE_TTL_S": str(TTL), "VITRINE_ORCH_HEARTBEAT_S": "0.5"}


@pytest.fixture
async def peer(fleet):
    other = fleet.peer()
    try:
        yield other
    finally:
        await other.cleanup()


async def _both_live(a: Fleet, b: Fleet) -> None:
    async def live():
        beats = [await a.redis.get(keys.orchestrator_heartbeat(n)) for n in (a.node, b.node)]
        return all(beats)

    await a.wait_for("both nodes' heartbeats", live, timeout=15)


async def _two_node_fleet(a: Fleet, b: Fleet, dc, count: int):
    """The bots are in the database but not wanted until both nodes are up (or the first node
    takes them all); node names for which placement gives each node half of them."""
    bots = [await dc.create_bot(f"Loja {n}") for n in range(count)]
    ids = [
        await a.add_instance(bot.token, name=f"Loja {n}", desired_state=DesiredState.STOPPED)
        for n, bot in enumerate(bots)
    ]
    name_a, name_b = split_node_names(a.node, ids)
    a.rename(name_a)
    b.rename(name_b)
    a.start()
    b.start()
    await _both_live(a, b)
    await BotInstance.filter(id__in=ids).update(
        desired_state=DesiredState.RUNNING, updated_at=datetime.now(UTC)
    )
    await mark_dirty(a.redis, *ids)
    recs = [await a.wait_state(i, S.ONLINE, timeout=25) for i in ids]
    return bots, ids, recs


async def _lease(fleet: Fleet, iid: int) -> Lease | None:
    return Lease.parse(await fleet.redis.get(keys.lease(iid)))


async def _one_session_each(dc, bots) -> list[dict]:
    infos = [await dc.bot_info(b) for b in bots]
    assert [i["open_connections"] for i in infos] == [1] * len(bots)
    return infos


async def test_two_nodes_share_the_bots_and_run_each_exactly_once(fleet, peer, dc):
    bots, ids, recs = await _two_node_fleet(fleet, peer, dc, 12)
    nodes = {r.node for r in recs}
    assert nodes == {fleet.node, peer.node}, "rendezvous placement puts bots on both nodes"
    for iid, rec in zip(ids, recs, strict=True):
        lease = await _lease(fleet, iid)
        assert lease is not None and lease.node == rec.node and rec.lease == lease.value
    infos = await _one_session_each(dc, bots)
    assert [i["identify_count"] for i in infos] == [1] * len(bots)
    await asyncio.sleep(2 * TTL)  # leases renewed, nobody steals, nothing restarts
    again = await _one_session_each(dc, bots)
    assert [i["identify_count"] for i in again] == [1] * len(bots)
    assert [(await fleet.record(i)).pid for i in ids] == [r.pid for r in recs]


async def test_a_dead_machine_s_bots_move_to_the_live_node(fleet, peer, dc):
    bots, ids, recs = await _two_node_fleet(fleet, peer, dc, 6)
    on_a = [i for i, r in zip(ids, recs, strict=True) if r.node == fleet.node]
    assert on_a, "placement left node A empty"
    for pid in node_processes(fleet.node):  # the machine is gone: orchestrator and workers
        os.kill(pid, signal.SIGKILL)

    async def moved():
        records = [await peer.record(i) for i in ids]
        return all(r.state == S.ONLINE and r.node == peer.node for r in records) and records

    records = await peer.wait_for("bots online on node B", moved, timeout=TTL + 15)
    await _one_session_each(dc, bots)
    for iid in on_a:
        assert (await _lease(fleet, iid)).node == peer.node
    assert all(alive(r.pid) for r in records)


async def test_orchestrator_down_alone_keeps_its_bots_and_adopts_them_again(fleet, peer, dc):
    bots, ids, recs = await _two_node_fleet(fleet, peer, dc, 6)
    on_a = {i: r for i, r in zip(ids, recs, strict=True) if r.node == fleet.node}
    assert on_a
    identifies = [(await dc.bot_info(b))["identify_count"] for b in bots]
    await fleet.stop(signal.SIGKILL)  # only the daemon: its workers keep running
    fleet.runs = 0  # (not an unexpected exit for the harness)
    await asyncio.sleep(3 * TTL)  # longer than the lease: the workers renew their own
    for iid, rec in on_a.items():
        now = await fleet.record(iid)
        assert now.node == fleet.node and now.pid == rec.pid and alive(rec.pid)
        assert (await _lease(fleet, iid)).node == fleet.node
    assert [(await dc.bot_info(b))["identify_count"] for b in bots] == identifies
    await _one_session_each(dc, bots)
    fleet.start()

    async def adopted():
        return (await fleet.orchestrator_status()).get("adopted") == str(len(on_a))

    await fleet.wait_for("adoption", adopted, timeout=10)
    victim = next(iter(on_a))  # watched again: a crash is handled by node A
    os.kill(on_a[victim].pid, signal.SIGKILL)
    back = await fleet.wait_state(victim, S.ONLINE, new_pid_than=on_a[victim].pid, timeout=10)
    assert back.node == fleet.node


async def test_fenced_worker_stops_itself_and_the_bot_returns_when_the_lease_frees(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, S.ONLINE, timeout=20)
    # another node was granted the lease (as after a network partition): what its acquire
    # script writes; that node then dies without a heartbeat
    await fleet.redis.set(keys.lease(iid), "node-elsewhere:999999999", px=int(TTL * 1000))
    await fleet.redis.sadd(keys.node_leases("node-elsewhere"), iid)
    await fleet.redis.sadd(keys.ORCHESTRATOR_NODES, "node-elsewhere")

    async def closed():
        return (await dc.bot_info(bot))["open_connections"] == 0 and not alive(rec.pid)

    await fleet.wait_for("fenced worker gone", closed, timeout=5)
    identify_before = (await dc.bot_info(bot))["identify_count"]
    # nobody renews the foreign lease; it expires and this node runs the bot again
    back = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=TTL + 10)
    assert back.node == fleet.node
    assert (await _lease(fleet, iid)).node == fleet.node
    info = await dc.bot_info(bot)
    # the fenced worker left its gateway session resumable: the bot returns by RESUME (#14)
    assert info["open_connections"] == 1 and info["identify_count"] == identify_before
    assert info["resume_count"] >= 1
    assert not back.crashes, "a fenced-off worker is not a crash"


async def test_commands_reach_the_node_that_runs_the_bot(fleet, peer, dc):
    bots, ids, recs = await _two_node_fleet(fleet, peer, dc, 6)
    for iid, rec in zip(ids, recs, strict=True):  # whichever node reads it, the owner acts
        res = await send_command(fleet.redis, "restart", iid, actor="admin:test", timeout=15)
        assert res.ok, res
        new = await fleet.wait_state(iid, S.ONLINE, new_pid_than=rec.pid, timeout=15)
        assert new.node == rec.node
    stopped = ids[0]
    res = await send_command(fleet.redis, "stop", stopped, actor="admin:test", timeout=15)
    assert res.ok and res.state == "stopped", res
    assert (await dc.bot_info(bots[0]))["open_connections"] == 0
    assert await fleet.redis.get(keys.lease(stopped)) is None, "a stopped bot holds no lease"
    res = await send_command(fleet.redis, "start", stopped, actor="admin:test", timeout=15)
    assert res.ok, res
    await fleet.wait_state(stopped, S.ONLINE, timeout=15)
    await _one_session_each(dc, bots)

"""A rolling update of the orchestrator StatefulSet: with `VITRINE_ORCH_ON_STOP=handover` (as
deploy/kubernetes sets it), SIGTERM makes a node hand its bots to the other node within
seconds, well inside the lease TTL that a killed node's bots would wait for; each bot keeps
exactly one gateway session and the stopping node leaves no process behind."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from core.tuning import TuningError
from fleet import keys
from fleet.control_protocol import mark_dirty
from fleet.leases import Lease
from fleet.states import InstanceState
from ops.fleet_harness import Fleet, alive, node_processes
from orchestrator.handover import HANDOVER, KEEP, on_stop

S = InstanceState
TTL = 30.0  # the production default: a lapse would take this long, a handover must not
PASS_S = 2.0  # the production default change pass


def test_k8s_handover_setting_defaults_to_keep_and_refuses_other_values():
    assert on_stop({}) == KEEP
    assert on_stop({"VITRINE_ORCH_ON_STOP": "handover"}) == HANDOVER
    with pytest.raises(TuningError, match="VITRINE_ORCH_ON_STOP"):
        on_stop({"VITRINE_ORCH_ON_STOP": "drain"})


@pytest.fixture
def fleet_env() -> dict[str, str]:
    return {
        "VITRINE_ORCH_ON_STOP": "handover",
        "VITRINE_LEASE_TTL_S": str(TTL),
        "VITRINE_ORCH_PASS_S": str(PASS_S),
        "VITRINE_ORCH_HEARTBEAT_S": "0.5",
    }


@pytest.fixture
async def peer(fleet):
    other = fleet.peer()
    try:
        yield other
    finally:
        await other.cleanup()


async def _both_live(a: Fleet, b: Fleet) -> None:
    async def live():
        return all([await a.redis.get(keys.orchestrator_heartbeat(n)) for n in (a.node, b.node)])

    await a.wait_for("both nodes' heartbeats", live, timeout=15)


@pytest.mark.e2e
@pytest.mark.timeout(180)
async def test_k8s_sigterm_hands_the_node_s_bots_to_the_other_node_within_seconds(fleet, peer, dc):
    fleet.start()
    peer.start()
    await _both_live(fleet, peer)
    await asyncio.sleep(0.3)
    bots = [await dc.create_bot(f"Loja {n}") for n in range(6)]
    ids = [await fleet.add_instance(b.token, name=f"Loja {n}") for n, b in enumerate(bots)]
    await mark_dirty(fleet.redis, *ids)
    recs = [await fleet.wait_state(i, S.ONLINE, timeout=40) for i in ids]
    on_a = {i: r for i, r in zip(ids, recs, strict=True) if r.node == fleet.node}
    assert on_a and len(on_a) < len(ids), "rendezvous placement puts bots on both nodes"

    began = time.monotonic()
    code = await fleet.stop(signal.SIGTERM)  # what the kubelet sends when the pod goes
    assert code == 0, fleet.output()
    fleet.runs = 0  # (its exit is expected from here on)
    assert "handed over" in fleet.output()
    assert await fleet.redis.get(keys.orchestrator_heartbeat(fleet.node)) is None

    async def moved():
        records = [await peer.record(i) for i in ids]
        return all(r and r.state == S.ONLINE and r.node == peer.node for r in records)

    await peer.wait_for("every bot online on node B", moved, timeout=TTL)
    took = time.monotonic() - began
    print(f"handover: {len(on_a)} bot(s) online on the other node {took:.1f} s after SIGTERM")
    assert took < TTL / 2, f"handover took {took:.1f} s: no faster than the lease lapsing"

    assert not [p for p in node_processes(fleet.node) if alive(p)], "node A left processes"
    for iid, rec in on_a.items():
        assert not alive(rec.pid)
        lease = Lease.parse(await peer.redis.get(keys.lease(iid)))
        assert lease is not None and lease.node == peer.node
    infos = [await dc.bot_info(b) for b in bots]
    assert [i["open_connections"] for i in infos] == [1] * len(bots), "one session per bot"


async def test_k8s_orchestrator_readiness_probe_follows_the_node_heartbeat(redis_client, redis_url):
    import os
    import subprocess
    import sys

    env = {**os.environ, "REDIS_URL": redis_url, "ORCHESTRATOR_NODE": "vitrine-orchestrator-0"}

    def probe() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator.probe"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    missing = probe()
    assert missing.returncode == 1 and "no heartbeat" in missing.stderr
    await redis_client.set(keys.orchestrator_heartbeat("vitrine-orchestrator-0"), "1", ex=15)
    assert probe().returncode == 0
    env["REDIS_URL"] = "redis://127.0.0.1:9/0"  # Redis unreachable: not ready, no hang
    gone = probe()
    assert gone.returncode == 1 and "redis" in gone.stderr

"""End to end (real orchestrator and worker, SQLite): a worker whose write the database refuses
stops with LEASE_LOST at once, leaves the work where it was, and the bot comes back under a
larger token."""

from __future__ import annotations

import pytest

from core.exitcodes import ExitCode
from fleet import fencing, keys
from fleet.leases import Lease
from fleet.states import InstanceState
from ops.fleet_harness import alive

pytestmark = pytest.mark.e2e
TTL = 3.0


@pytest.fixture
def fleet_env() -> dict[str, str]:
    return {"VITRINE_LEASE_TTL_S": str(TTL), "VITRINE_ORCH_HEARTBEAT_S": "0.5"}


async def test_fencing_worker_whose_write_is_refused_exits_lease_lost(fleet, dc):
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, InstanceState.ONLINE, timeout=20)
    lease = Lease.parse(await fleet.redis.get(keys.lease(iid)))
    assert lease is not None and rec.lease == lease.value
    assert await fencing.high_water(iid) == lease.token  # claimed by the node's grant

    # another node was granted the bot (its claim reached the database; this worker has not
    # noticed: paused, or cut off from Redis): the worker's next write is refused
    newer = lease.token + 1000
    await fencing.claim(iid, newer)
    entry = await fleet.redis.xadd(keys.delivery_stream(iid), {"order_id": "424242"})

    async def gone() -> bool:
        return not alive(rec.pid) and (await dc.bot_info(bot))["open_connections"] == 0

    await fleet.wait_for("fenced worker gone", gone, timeout=10)
    info = await fleet.redis.hgetall(keys.exit_info(iid))
    assert info["pid"] == str(rec.pid)
    assert (int(info["code"]), info["detail"]) == (ExitCode.LEASE_LOST, "fenced")
    assert await fencing.refusals(iid) == 1
    pending = await fleet.redis.xpending(keys.delivery_stream(iid), keys.DELIVERY_GROUP)
    assert pending["pending"] == 1 and pending["min"] == entry  # left for the real owner

    # nobody renews the refused worker's lease: once it lapses the bot runs again, above the
    # database's mark, and not as a crash
    back = await fleet.wait_state(iid, InstanceState.ONLINE, new_pid_than=rec.pid, timeout=TTL + 15)
    now = Lease.parse(back.lease)
    assert now is not None and now.token > newer
    assert await fencing.high_water(iid) == now.token
    assert not back.crashes, "a fenced-off worker is not a crash"
    assert (await dc.bot_info(bot))["open_connections"] == 1


async def test_fencing_worker_that_cannot_renew_for_a_ttl_stops_itself(fleet, dc):
    """Redis stops answering (CLIENT PAUSE: every client waits) for twice the TTL: the worker's
    own clock stops it before its lease could lapse; the bot runs again afterwards."""
    bot = await dc.create_bot("Loja")
    iid = await fleet.add_instance(bot.token)
    fleet.start()
    rec = await fleet.wait_state(iid, InstanceState.ONLINE, timeout=20)
    await fleet.redis.execute_command("CLIENT", "PAUSE", int(2 * TTL * 1000), "ALL")

    async def closed() -> bool:
        return (await dc.bot_info(bot))["open_connections"] == 0

    await fleet.wait_for("worker stopped by its clock", closed, timeout=TTL + 1.5)

    async def exit_note() -> dict[str, str]:  # written once the pause is over
        return await fleet.redis.hgetall(keys.exit_info(iid))

    info = await fleet.wait_for("the worker's exit note", exit_note, timeout=2 * TTL + 5)
    assert info["pid"] == str(rec.pid)
    assert (int(info["code"]), info["detail"]) == (ExitCode.LEASE_LOST, "lease_expired")
    back = await fleet.wait_state(iid, InstanceState.ONLINE, new_pid_than=rec.pid, timeout=TTL + 15)
    assert not back.crashes

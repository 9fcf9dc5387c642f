"""Instance leases with fencing tokens (fleet.leases) against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import keys
from fleet.leases import Lease, LeaseBook, lease_ttl, live_nodes, preferred_node
from fleet.runtime import beat_write


@pytest.fixture
def redis(redis_client):
    return redis_client


async def test_one_holder_at_a_time_and_tokens_only_grow(redis):
    a, b = LeaseBook(redis, "node-a", 10), LeaseBook(redis, "node-b", 10)
    first, _ = await a.acquire(7)
    assert first is not None and first.node == "node-a"
    refused, holder = await b.acquire(7)
    assert refused is None and holder == first
    again, _ = await a.acquire(7)  # the same node restarting the bot: a new, larger token
    assert again is not None and again.token > first.token
    assert await redis.smembers(keys.node_leases("node-a")) == {"7"}


async def test_renew_keeps_recreates_and_reports_what_another_node_took(redis):
    a, b = LeaseBook(redis, "node-a", 10), LeaseBook(redis, "node-b", 10)
    one, _ = await a.acquire(1)
    two, _ = await a.acquire(2)
    three, _ = await a.acquire(3)
    await redis.delete(keys.lease(2))  # Redis lost it
    await redis.set(keys.lease(3), "node-b:999999")  # granted elsewhere after a lapse
    await redis.pexpire(keys.lease(1), 50)
    lost = await a.renew({1: one.value, 2: two.value, 3: three.value})
    assert lost == {3}
    assert await redis.pttl(keys.lease(1)) > 5000
    assert await redis.get(keys.lease(2)) == two.value
    assert await redis.smembers(keys.node_leases("node-a")) == {"1", "2"}
    assert (await b.acquire(1))[0] is None


async def test_a_worker_beat_renews_its_lease_and_a_fenced_off_worker_writes_no_heartbeat(redis):
    """One round trip a beat (fleet.leases.renew_and_beat): while the lease is the worker's it
    is renewed (or re-created after Redis lost it) and the heartbeat written; once another
    node holds it, nothing is written, so the new owner's orchestrator never sees the old
    worker's beat as its own worker's."""
    node = LeaseBook(redis, "node-a", 10)
    held, _ = await node.acquire(4)
    await redis.pexpire(keys.lease(4), 50)
    assert await node.renew_and_beat(4, held.value, beat_write(4, 12.5, 3))
    assert await redis.pttl(keys.lease(4)) > 5000
    assert await redis.get(keys.heartbeat(4)) is not None
    assert await redis.hgetall(keys.runtime(4)) == {"latency_ms": "12.5", "guilds": "3"}
    await redis.delete(keys.lease(4), keys.heartbeat(4))  # Redis restarted empty
    assert await node.renew_and_beat(4, held.value, beat_write(4, None, None))
    assert await redis.get(keys.lease(4)) == held.value
    assert await redis.get(keys.heartbeat(4)) is not None
    await redis.delete(keys.heartbeat(4), keys.runtime(4))
    await redis.set(keys.lease(4), "node-b:999999")  # taken over after a lapse
    assert not await node.renew_and_beat(4, held.value, beat_write(4, 12.5, 3))
    assert await redis.get(keys.heartbeat(4)) is None
    assert await redis.hgetall(keys.runtime(4)) == {}
    assert await redis.get(keys.lease(4)) == "node-b:999999"
    assert await redis.smembers(keys.node_leases("node-a")) == set()


async def test_release_only_by_the_holder_of_that_token(redis):
    a = LeaseBook(redis, "node-a", 10)
    old, _ = await a.acquire(5)
    new, _ = await a.acquire(5)
    assert not await a.release(5, old.value)  # a stale worker's value frees nothing
    assert await redis.get(keys.lease(5)) == new.value
    assert await a.release(5, new.value)
    assert await redis.get(keys.lease(5)) is None
    assert await redis.smembers(keys.node_leases("node-a")) == set()


async def test_lapsed_leases_of_dead_nodes_are_orphans_and_empty_dead_nodes_are_forgotten(redis):
    dead, live = LeaseBook(redis, "dead", 0.2), LeaseBook(redis, "live", 10)
    await redis.sadd(keys.ORCHESTRATOR_NODES, "dead", "live")
    await redis.set(keys.orchestrator_heartbeat("live"), "1")
    for iid in (1, 2, 3):
        await dead.acquire(iid)
    await live.acquire(9)
    assert await live.orphans(await live_nodes(redis)) == set()  # not lapsed yet
    await asyncio.sleep(0.3)
    assert await live.orphans(await live_nodes(redis)) == {1, 2, 3}
    await live.acquire(1)  # taken over: no longer the dead node's
    assert await live.orphans({"live"}) == {2, 3}
    assert await redis.smembers(keys.node_leases("dead")) == {"2", "3"}
    await live.acquire(2)
    await live.acquire(3)
    assert await live.orphans({"live"}) == set()
    assert await live.orphans({"live"}) == set()
    assert await redis.smembers(keys.ORCHESTRATOR_NODES) == {"live"}


def test_lease_values_and_ttl_setting():
    assert Lease.parse("host:a:12") == Lease("host:a", 12)
    assert Lease.parse("garbage") is None and Lease.parse(None) is None
    assert lease_ttl({}) == 30.0 and lease_ttl({"VITRINE_LEASE_TTL_S": "5"}) == 5.0
    with pytest.raises(ValueError, match="VITRINE_LEASE_TTL_S"):
        lease_ttl({"VITRINE_LEASE_TTL_S": "0.1"})
    with pytest.raises(ValueError, match="VITRINE_LEASE_TTL_S"):
        lease_ttl({"VITRINE_LEASE_TTL_S": "soon"})


nodes_st = st.sets(st.text("abcdefgh-0123456789", min_size=1, max_size=8), min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(nodes=nodes_st, ids=st.lists(st.integers(1, 10**6), min_size=1, max_size=50))
def test_rendezvous_placement_moves_only_the_leaving_node_s_bots(nodes, ids):
    before = {i: preferred_node(i, nodes) for i in ids}
    gone = sorted(nodes)[0]
    after = {i: preferred_node(i, nodes - {gone}) for i in ids}
    for i in ids:
        assert before[i] in nodes
        if before[i] != gone:
            assert after[i] == before[i]  # a node leaving moves only its own bots
        assert after[i] != gone
    assert {i: preferred_node(i, set(reversed(sorted(nodes)))) for i in ids} == before

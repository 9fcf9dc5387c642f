import asyncio
import time

import pytest

from core.errors import IllegalTransition
from core.redis import connect
from fleet import keys
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState


@pytest.fixture
async def store(redis_url):
    client = connect(redis_url)
    yield RuntimeStore(client)
    await client.aclose()


async def test_state_changes_follow_the_table_and_record_since(store):
    assert await store.transition(1, InstanceState.STARTING, pid=1234, node="n1") is None
    before = time.time()
    assert await store.transition(1, InstanceState.ONLINE) == InstanceState.STARTING
    record = await store.get(1)
    assert record.state == InstanceState.ONLINE and record.pid == 1234 and record.node == "n1"
    assert record.online_since >= before - 1
    await store.transition(1, InstanceState.SUSPENDED, pid=None)
    with pytest.raises(IllegalTransition):
        await store.transition(1, InstanceState.ONLINE)
    record = await store.get(1)
    assert record.state == InstanceState.SUSPENDED and record.pid is None


async def test_concurrent_transitions_never_skip_the_table(store):
    await store.transition(7, InstanceState.STARTING)
    results = await asyncio.gather(
        *(store.transition(7, InstanceState.ONLINE) for _ in range(10)),
        return_exceptions=True,
    )
    # Once ONLINE, ONLINE->ONLINE is not in the table: exactly one call wins.
    winners = [r for r in results if not isinstance(r, Exception)]
    assert winners == [InstanceState.STARTING]
    assert all(isinstance(r, IllegalTransition) for r in results if r not in winners)


async def test_heartbeat_expires_and_last_error_is_kept_in_history(store):
    await store.transition(3, InstanceState.STARTING)
    await store.beat(3, latency_ms=42.5, guilds=2, ttl=1)
    record = await store.get(3)
    assert record.latency_ms == 42.5 and record.guilds == 2 and record.heartbeat_age < 1
    await store.set_last_error(3, "Token inválido", 4004)
    await store.set_last_error(3, "boom", "crash")
    record = await store.get(3)
    assert record.last_error.message == "boom" and record.last_error.code == "crash"
    assert [e.code for e in await store.error_history(3)] == ["crash", "4004"]
    await asyncio.sleep(1.2)
    assert (await store.get(3)).heartbeat_at is None


async def test_crash_history_is_capped_and_counts_restarts(store):
    await store.transition(4, InstanceState.STARTING)
    for i in range(keys.CRASH_HISTORY_MAX + 5):
        await store.record_crash(4, {"at": i, "code": 1})
    history = await store.crash_history(4)
    assert len(history) == keys.CRASH_HISTORY_MAX and history[0]["at"] == keys.CRASH_HISTORY_MAX + 4
    assert (await store.get(4)).restarts == keys.CRASH_HISTORY_MAX + 5
    await store.clear_crashes(4)
    assert (await store.get(4)).restarts == 0 and await store.crash_history(4) == []


async def test_a_page_of_instances_is_read_in_one_round_trip(store, monkeypatch):
    for iid in range(1, 51):
        await store.transition(iid, InstanceState.STARTING, pid=1000 + iid)
    calls = 0
    original = type(store.redis.pipeline(transaction=False)).execute

    async def counting(self, *a, **kw):
        nonlocal calls
        calls += 1
        return await original(self, *a, **kw)

    monkeypatch.setattr(type(store.redis.pipeline(transaction=False)), "execute", counting)
    records = await store.get_many(list(range(1, 61)))
    assert calls == 1
    assert sorted(records) == list(range(1, 51))
    assert records[50].pid == 1050

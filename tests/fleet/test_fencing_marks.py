"""The database's fencing high-water mark (fleet.fencing), SQLite and PostgreSQL, real Redis."""

from __future__ import annotations

import asyncio
import random

import pytest
from tortoise.transactions import in_transaction

from fleet import fencing, keys
from fleet.errors import FencedOut
from fleet.fencing import Fence
from fleet.leases import LeaseBook
from fleet.models import Alert, AlertKind, FenceMark


async def _mark(iid: int) -> int:
    mark = await FenceMark.get_or_none(instance_id=iid)
    return mark.token if mark is not None else 0


async def test_fencing_stale_token_is_refused_in_the_same_transaction_and_nothing_is_written(db):
    await fencing.claim(1, 7)
    with pytest.raises(FencedOut) as refused:
        async with in_transaction() as conn:
            # a write made before the check is rolled back with it
            await Alert.create(kind=AlertKind.CRASHLOOP, message="stale", using_db=conn)
            await fencing.check(conn, Fence(1, 5))
            await Alert.create(kind=AlertKind.CRASHLOOP, message="never", using_db=conn)
    assert (refused.value.token, refused.value.seen) == (5, 7)
    assert await Alert.all().count() == 0
    assert await _mark(1) == 7


async def test_fencing_larger_or_equal_token_is_accepted_and_raises_the_mark(db):
    async with in_transaction() as conn:  # the first write for an instance creates its mark
        await fencing.check(conn, Fence(2, 3))
    assert await _mark(2) == 3
    async with in_transaction() as conn:  # the owner's own token again: accepted
        await fencing.check(conn, Fence(2, 3))
        await Alert.create(kind=AlertKind.CRASHLOOP, message="owner", using_db=conn)
    async with in_transaction() as conn:
        await fencing.check(conn, Fence(2, 9))
    assert await _mark(2) == 9
    assert await _mark(3) == 0  # other instances are untouched
    assert await Alert.all().count() == 1
    await fencing.check(None, None)  # no fence (web tier, reconciler): nothing checked


async def test_fencing_a_grant_claims_its_token_strictly(db):
    await fencing.claim(4, 10)
    with pytest.raises(FencedOut):
        await fencing.claim(4, 10)  # the same token granted twice: the second is refused
    with pytest.raises(FencedOut):
        await fencing.claim(4, 8)
    await fencing.claim(4, 11)
    assert await _mark(4) == 11


async def test_fencing_concurrent_raises_commit_in_token_order_and_keep_the_largest(db):
    """Many writers with mixed tokens at once: the tokens that commit never go down, the
    mark ends at the largest, and every refused token is below a token seen before it."""
    tokens = list(range(1, 41))
    random.Random(15).shuffle(tokens)
    committed: list[int] = []
    refused: list[int] = []

    async def write(token: int) -> None:
        try:
            async with in_transaction() as conn:
                await fencing.check(conn, Fence(5, token))
                await asyncio.sleep(0)  # let the others run while the mark's row is held
                committed.append(token)
        except FencedOut:
            refused.append(token)

    await asyncio.gather(*(write(t) for t in tokens))
    assert committed == sorted(committed)
    assert max(committed) == 40 and await _mark(5) == 40
    assert all(token < 40 for token in refused)
    assert sorted(committed + refused) == sorted(tokens)


async def test_fencing_refusals_are_counted(db):
    await fencing.claim(6, 3)
    await fencing.note_refusal(6)
    await fencing.note_refusal(6)
    assert await fencing.refusals(6) == 2
    assert await fencing.refusals() == 2


def test_fencing_fence_comes_from_the_worker_s_lease_value():
    assert Fence.from_lease(3, "node-a:42") == Fence(3, 42)
    assert Fence.from_lease(3, "pod-0.orch:7") == Fence(3, 7)
    assert Fence.from_lease(3, None) is None


async def test_fencing_redis_restarted_empty_next_grant_is_above_the_database_mark(
    db, redis_client
):
    a, b = LeaseBook(redis_client, "node-a", 10), LeaseBook(redis_client, "node-b", 10)
    for _ in range(5):
        granted, _ = await fencing.acquire(a, 8)
        assert granted is not None
    assert await _mark(8) == granted.token
    old = granted
    await redis_client.flushall()  # restarted empty, no AOF: counter and leases gone
    new, _ = await fencing.acquire(b, 8)
    assert new is not None and new.token > old.token
    assert await _mark(8) == new.token
    assert int(await redis_client.get(keys.FENCING_COUNTER)) == new.token
    # the old owner's next write is refused: the database saw the new grant
    with pytest.raises(FencedOut):
        async with in_transaction() as conn:
            await fencing.check(conn, Fence(8, old.token))
    # other instances' grants continue above the counter
    other, _ = await fencing.acquire(a, 9)
    assert other is not None and other.token > new.token


async def test_fencing_a_counter_gone_backwards_during_a_grant_is_retaken_above_the_mark(
    db, redis_client, monkeypatch
):
    """The floor was read before Redis lost its counter: the grant is refused by the
    database, released, and taken again above the mark."""
    await fencing.claim(10, 50)
    real = fencing.high_water

    async def stale_floor(iid: int) -> int:
        return 0 if iid == 10 else await real(iid)

    monkeypatch.setattr(fencing, "high_water", stale_floor)
    book = LeaseBook(redis_client, "node-a", 10)
    granted, _ = await fencing.acquire(book, 10)
    assert granted is not None and granted.token == 51
    assert await redis_client.get(keys.lease(10)) == granted.value
    assert await _mark(10) == 51


async def test_fencing_a_lease_held_elsewhere_claims_nothing(db, redis_client):
    a, b = LeaseBook(redis_client, "node-a", 10), LeaseBook(redis_client, "node-b", 10)
    granted, _ = await fencing.acquire(a, 11)
    refused, holder = await fencing.acquire(b, 11)
    assert refused is None and holder == granted
    assert await _mark(11) == granted.token
    assert await FenceMark.all().count() == 1


async def test_fencing_a_slow_or_failing_database_does_not_hold_up_a_grant(
    db, redis_client, monkeypatch
):
    """Starting a bot needs Redis, not the database: the claim finishes in the background
    (or fails) and the grant stands; the worker's own writes still check its token."""
    book = LeaseBook(redis_client, "node-a", 10)
    real_claim = fencing.claim
    release = asyncio.Event()

    async def slow_claim(iid: int, token: int) -> None:
        await release.wait()
        await real_claim(iid, token)

    monkeypatch.setattr(fencing, "claim", slow_claim)
    granted, _ = await fencing.acquire(book, 12, wait=0.05)
    assert granted is not None and await _mark(12) == 0
    release.set()
    for _ in range(100):  # the claim lands once the database answers
        if await _mark(12) == granted.token:
            break
        await asyncio.sleep(0.02)
    assert await _mark(12) == granted.token

    async def broken_claim(iid: int, token: int) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(fencing, "claim", broken_claim)
    again, _ = await fencing.acquire(book, 12, wait=0.05)
    assert again is not None and again.token > granted.token

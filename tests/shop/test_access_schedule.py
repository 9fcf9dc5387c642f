"""Access scheduling (issue 16): the pure reminder rules hold for every period (hypothesis),
and the reconciler's access relay wakes the store's instance through its delivery stream
once per due grant (again only after `REWAKE_S`, or at once when a revocation makes the
grant due anew), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fleet import keys
from fleet.models import BotInstance
from shop.access_plan import Reminder, Times, next_due, reminder_due, reminders_already_past
from shop.access_relay import AccessRelay
from shop.access_revoke import revoke_for_order
from shop.models import AccessGrant, Order, Variation
from shop.orders import transition
from shop.states import OrderStatus
from tests.shop.helpers import make_order, make_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@given(
    days=st.integers(min_value=1, max_value=400),
    steps=st.lists(st.integers(min_value=1, max_value=72), min_size=1, max_size=200),
)
def test_each_reminder_sent_at_most_once_never_after_the_end_and_never_at_purchase(days, steps):
    """Walk a period with a worker waking at arbitrary times (hours apart): each reminder
    goes at most once, only inside its window, and a period shorter than a window gets none
    of that window's reminder at purchase."""
    ends = T0 + timedelta(days=days)
    skip_3d, skip_1d = reminders_already_past(ends, T0)
    stamps: dict[str, datetime | None] = {
        "3d": T0 if skip_3d else None,
        "1d": T0 if skip_1d else None,
    }
    sent: list[Reminder] = []
    now = T0
    for step in steps:
        times = Times(ends, stamps["3d"], stamps["1d"], T0)
        due = next_due(times, now, HOUR)
        assert due is not None and due >= now
        now = now + timedelta(hours=step)
        which = reminder_due(Times(ends, stamps["3d"], stamps["1d"], T0), now)
        if which is not None:
            assert now < ends and ends - now <= timedelta(days=3)
            sent.append(which)
            stamps["1d"] = now if which == Reminder.DAYS_1 else stamps["1d"]
            stamps["3d"] = stamps["3d"] or now
    assert len(sent) == len(set(sent))
    if skip_3d:
        assert Reminder.DAYS_3 not in sent


async def _store_with_grant() -> tuple[Order, BotInstance]:
    store = await make_store(stock=0)
    await Variation.filter(id=store["variation"].id).update(role_ids=["77"])
    order = await make_order(store, reserve=False)
    await transition(order.id, OrderStatus.PAID, "test")
    await transition(order.id, OrderStatus.DELIVERED, "test")
    return order, store["instance"]


async def _entries(redis, instance_id: int) -> list[dict[str, str]]:
    return [fields for _, fields in await redis.xrange(keys.delivery_stream(instance_id))]


async def test_relay_wakes_the_store_once_per_due_grant_and_anew_after_a_revocation(
    db, redis_client
):
    redis = redis_client
    order, instance = await _store_with_grant()
    relay = AccessRelay(redis)
    assert await relay.tick() == 1
    assert await relay.tick() == 0  # still due (no worker claimed it): not woken again yet
    wake = await _entries(redis, instance.id)
    assert wake == [{"access": str(order.tenant_id)}]
    await revoke_for_order(order, "refund")  # due anew: woken at once
    assert await relay.tick() == 1
    await AccessGrant.filter(order_id=order.id).update(next_due_at=None)
    assert await relay.tick() == 0
    assert len(await _entries(redis, instance.id)) == 2

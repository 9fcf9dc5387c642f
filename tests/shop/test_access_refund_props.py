"""Property of refunds against timed access (issue 16), on SQLite and PostgreSQL: after any
sequence of purchases, renewals, refunds (chargebacks, MEDs) and time passing, the access
left is exactly the days the non-refunded orders paid for minus the part of each already
used, never negative. The reference model is a queue of paid periods consumed in order; a
refund drops what is left of its order's period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shop.access import grant_for_order
from shop.access_revoke import revoke_for_order
from shop.models import AccessGrant, AccessOrder, AccessStatus, Order, Variation
from tests.shop.helpers import make_order, make_store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAYS = 7  # the variation's period (× quantity)

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(1, 2)),  # quantity: one or two periods
        st.tuples(st.just("wait"), st.integers(0, 24 * 12)),  # hours
        st.tuples(st.just("refund"), st.integers(0, 20)),  # which order (modulo)
        st.tuples(st.just("refund_again"), st.integers(0, 20)),  # a replayed refund
    ),
    max_size=14,
)


async def _remaining(tenant_id: int, now: datetime) -> timedelta:
    """What the database says is left: the ACTIVE grant's end minus now (ends passed are
    expired first, as the store's worker would)."""
    await AccessGrant.filter(
        tenant_id=tenant_id, status=AccessStatus.ACTIVE, ends_at__lte=now
    ).update(status=AccessStatus.ENDED, ended_reason="expired")
    active = await AccessGrant.filter(tenant_id=tenant_id, status=AccessStatus.ACTIVE)
    assert len(active) <= 1  # one access per buyer and variation
    if not active or active[0].ends_at is None:
        return timedelta(0)
    return active[0].ends_at - now


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_access_left_is_what_unrefunded_orders_paid_minus_time_used(db, ops):
    store = await make_store(stock=0)
    await Variation.filter(id=store["variation"].id).update(duration_days=DAYS, role_ids=["77"])
    tid = store["tenant"].id
    now = T0
    orders: list[Order] = []
    left: list[timedelta] = []  # the model: what is left of each order's period
    refunded: set[int] = set()
    for op, value in ops:
        if op == "buy":
            if sum(left, timedelta(0)) == timedelta(0):  # a new access, not a renewal
                left = [timedelta(0)] * len(left)
            order = await make_order(store, value, reserve=False)
            await grant_for_order(order, now=now)
            orders.append(order)
            left.append(timedelta(days=DAYS * value))
        elif op == "wait":
            spent = HOUR * value
            for k, part in enumerate(left):  # consumed in order, first period first
                used = min(part, spent)
                left[k], spent = part - used, spent - used
            now += HOUR * value
        elif orders:
            k = value % len(orders)
            if op == "refund_again" and k not in refunded:
                continue
            await revoke_for_order(orders[k], "chargeback" if value % 2 else "refund", now=now)
            refunded.add(k)
            left[k] = timedelta(0)
        remaining = await _remaining(tid, now)
        assert remaining >= timedelta(0)
        assert remaining == sum(left, timedelta(0)), (op, value)
    # history kept: every refunded order's link says so, the others do not
    links = await AccessOrder.filter(order__tenant_id=tid).values("order_id", "refunded_at")
    marked = {row["order_id"] for row in links if row["refunded_at"] is not None}
    assert marked == {orders[k].id for k in refunded}

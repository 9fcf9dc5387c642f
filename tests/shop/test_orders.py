"""The order state machine: one function, checked, audited, idempotent, releasing stock."""

import pytest

from core.errors import IllegalTransition
from core.models import AuditLog
from shop.models import Order, StockItem
from shop.orders import cancel_order, transition
from shop.states import OrderStatus, StockStatus
from tests.shop.helpers import make_order, make_store


async def test_pending_to_paid_to_delivered_sets_timestamps_and_audits(db):
    store = await make_store()
    order = await make_order(store)
    moved = await transition(order.id, OrderStatus.PAID, "system:test")
    assert moved.changed and moved.before == OrderStatus.PENDING
    await transition(order.id, OrderStatus.DELIVERED, "worker:1", updates={"delivery_path": "dm"})
    fresh = await Order.get(id=order.id)
    assert fresh.status == OrderStatus.DELIVERED and fresh.paid_at and fresh.delivered_at
    assert fresh.delivery_path == "dm"
    actions = (
        await AuditLog.filter(target_type="order", target_id=str(order.id))
        .order_by("id")
        .values_list("action", "actor")
    )
    assert actions == [("order.paid", "system:test"), ("order.delivered", "worker:1")]


async def test_same_transition_twice_is_a_no_op(db):
    order = await make_order(await make_store())
    assert (await transition(order.id, OrderStatus.PAID, "a")).changed
    again = await transition(order.id, OrderStatus.PAID, "a")
    assert not again.changed
    assert await AuditLog.filter(action="order.paid").count() == 1


@pytest.mark.parametrize(
    "path",
    [
        [OrderStatus.DELIVERED],
        [OrderStatus.WAITING_STOCK],
        [OrderStatus.EXPIRED, OrderStatus.PAID],
        [OrderStatus.PAID, OrderStatus.PENDING],
    ],
)
async def test_illegal_transitions_raise_and_change_nothing(db, path):
    order = await make_order(await make_store())
    for step in path[:-1]:
        await transition(order.id, step, "a")
    before = (await Order.get(id=order.id)).status
    with pytest.raises(IllegalTransition):
        await transition(order.id, path[-1], "a")
    assert (await Order.get(id=order.id)).status == before


@pytest.mark.parametrize("final", [OrderStatus.EXPIRED, OrderStatus.CANCELLED])
async def test_expired_or_cancelled_releases_reserved_stock(db, final):
    store = await make_store(stock=3)
    order = await make_order(store, quantity=2)
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 2
    moved = (
        await cancel_order(order.id, "buyer:555")
        if final == OrderStatus.CANCELLED
        else await transition(order.id, final, "system:test")
    )
    assert moved.released_items == 2
    assert await StockItem.filter(status=StockStatus.AVAILABLE, order_id=None).count() == 3
    fresh = await Order.get(id=order.id)
    assert fresh.closed_at is not None and fresh.reserved_until is None

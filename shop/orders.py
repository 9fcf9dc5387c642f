"""The one function every order state change goes through.

`transition` checks the table in `shop.states`, sets the timestamps (and the delivery a paid
order owes, `wake_at`: see `shop.outbox`), releases reserved stock
when an order closes unpaid (or is refunded before delivery), gives back the coupon use of
an order that closes without ever being paid (abandoned checkouts do not use up a limited
coupon), and writes the audit log — all in one DB transaction (the caller's, if it passes
`using_db`). Moving to the state the order is already in is a no-op, so a replayed event
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import audit
from shop.access import grant_for_order
from shop.errors import OrderNotFound
from shop.kinds import release_units
from shop.models import Coupon, Order, StockItem
from shop.outbox import WAKE_GRACE
from shop.ratings import schedule_ask
from shop.states import ORDER_TRANSITIONS, OrderStatus, StockStatus, check

RELEASING_STATES = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.REFUNDED})
UNPAID_CLOSES = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED})
_TIMESTAMPS = {
    OrderStatus.PAID: "paid_at",
    OrderStatus.DELIVERED: "delivered_at",
    OrderStatus.EXPIRED: "closed_at",
    OrderStatus.CANCELLED: "closed_at",
    OrderStatus.REFUNDED: "closed_at",
}


@dataclass(frozen=True)
class Transition:
    """What `transition` did: `changed` is False when the order was already in `after`."""

    order: Order
    before: OrderStatus
    after: OrderStatus
    changed: bool
    released_items: int = 0


async def _locked_order(order_id: int, conn: Any) -> Order:
    order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


async def release_reserved_stock(order: Order, conn: Any) -> int:
    """Give the order's reserved (not sold) items back to the shelf; returns how many."""
    released = (
        await StockItem.filter(order_id=order.id, status=StockStatus.RESERVED)
        .using_db(conn)
        .update(status=StockStatus.AVAILABLE, order_id=None, reserved_until=None)
    )
    return int(released or 0)


async def _apply(
    order: Order,
    new: OrderStatus,
    actor: str,
    reason: str,
    updates: dict[str, Any] | None,
    conn: Any,
) -> Transition:
    before = OrderStatus(order.status)
    if before == new:
        return Transition(order, before, new, changed=False)
    check(ORDER_TRANSITIONS, "order", before, new)
    now = datetime.now(UTC)
    order.status = new
    fields = ["status", "updated_at"]
    stamp = _TIMESTAMPS.get(new)
    if stamp:
        setattr(order, stamp, now)
        fields.append(stamp)
    if new == OrderStatus.PAID:  # the delivery it now owes, in this same UPDATE (shop.outbox)
        order.wake_at = now + WAKE_GRACE
        fields.append("wake_at")
    elif order.wake_at is not None:  # delivered, waiting for stock or closed: nothing owed
        order.wake_at = None
        fields.append("wake_at")
    for name, value in (updates or {}).items():
        setattr(order, name, value)
        fields.append(name)
    released = 0
    if new in RELEASING_STATES:
        released = await release_reserved_stock(order, conn)
        if before != OrderStatus.DELIVERED:  # a non-stock kind's units (shop.kinds)
            released += await release_units(order, conn)
        order.reserved_until = None
        fields.append("reserved_until")
    await order.save(using_db=conn, update_fields=list(dict.fromkeys(fields)))
    if new == OrderStatus.DELIVERED:  # the rating DM it now owes its buyer (issue 17)
        await schedule_ask(order, conn)
        # the roles and timed access it gives, in this transaction (issue 16: shop.access)
        await grant_for_order(order, using_db=conn, now=now)
    after: dict[str, Any] = {"status": str(new)}
    if reason:
        after["reason"] = reason
    if released:
        after["released_items"] = released
    if new in UNPAID_CLOSES and before == OrderStatus.PENDING and order.coupon_id:
        returned = (
            await Coupon.filter(id=order.coupon_id, uses__gt=0)
            .using_db(conn)
            .update(uses=F("uses") - 1)
        )
        if returned:
            after["coupon_use_returned"] = True
    await audit.record(
        actor,
        f"order.{new}",
        "order",
        order.id,
        tenant_id=order.tenant_id,
        before={"status": str(before)},
        after=after,
        using_db=conn,
    )
    return Transition(order, before, new, changed=True, released_items=released)


async def transition(
    order_id: int,
    new: OrderStatus,
    actor: str,
    *,
    reason: str = "",
    updates: dict[str, Any] | None = None,
    using_db: Any = None,
) -> Transition:
    """Move an order to `new` (checked, timestamped, audited); no-op if it is already there.

    Raises `IllegalTransition` for a move the table forbids and `OrderNotFound`. `updates`
    sets extra fields in the same save (e.g. `delivery_path` when delivering).
    """
    if using_db is not None:
        order = await _locked_order(order_id, using_db)
        return await _apply(order, new, actor, reason, updates, using_db)
    async with in_transaction() as conn:
        order = await _locked_order(order_id, conn)
        return await _apply(order, new, actor, reason, updates, conn)


async def cancel_order(order_id: int, actor: str, reason: str = "cancelled by buyer") -> Transition:
    """The buyer gives up a pending order; its reservation is released at once.

    A PIX paid after this is refunded automatically by reconciliation (the stock is gone).
    """
    return await transition(order_id, OrderStatus.CANCELLED, actor, reason=reason)

"""Stock allocation: reserve items for a pending order, sell them to a paid one.

Every function runs inside the caller's DB transaction (`conn`). Items are picked oldest
first with `FOR UPDATE SKIP LOCKED` on PostgreSQL (two allocators never wait on, nor take,
the same row; SQLite serialises writers), then moved with a conditional UPDATE that only
touches rows still `available`: if fewer rows moved than were picked, another order won one
and `Raced` rolls the transaction back. So an item is never given to two orders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shop.errors import ShopError
from shop.models import Order, StockItem
from shop.states import StockStatus

S = StockStatus


class OutOfStock(ShopError):
    """Not enough available items for this quantity (nothing was reserved)."""

    code = "out_of_stock"
    message_key = "storefront.error.out_of_stock"


class Raced(ShopError):
    """Another allocator took an item between our select and our update: roll back, retry."""

    code = "allocation_raced"
    message_key = "storefront.error.busy"


async def _pick(variation_id: int, count: int, conn: Any) -> list[int]:
    # Model rows, not values_list(): tortoise drops FOR UPDATE from values queries.
    rows = (
        await StockItem.filter(variation_id=variation_id, status=S.AVAILABLE)
        .using_db(conn)
        .select_for_update(skip_locked=True)
        .order_by("id")
        .limit(count)
        .only("id")
    )
    return [int(r.id) for r in rows]


async def _take(ids: list[int], conn: Any, **values: Any) -> None:
    moved = await StockItem.filter(id__in=ids, status=S.AVAILABLE).using_db(conn).update(**values)
    if moved != len(ids):
        raise Raced(f"wanted {len(ids)} items, got {moved}")


async def reserve(
    conn: Any, order_id: int, variation_id: int, quantity: int, until: datetime
) -> list[int]:
    """Hold `quantity` items for a pending order until `until`; raises `OutOfStock`."""
    picked = await _pick(variation_id, quantity, conn)
    if len(picked) < quantity:
        raise OutOfStock(f"variation {variation_id}: {len(picked)} < {quantity}")
    await _take(picked, conn, status=S.RESERVED, order_id=order_id, reserved_until=until)
    return picked


async def sell(conn: Any, order: Order) -> int:
    """Make the order's items sold, taking what it lacks; returns the shortfall (0 = filled).

    The order's reserved items become sold; missing ones are taken whole or not at all, so
    a short order keeps what it has and waits for a restock (`shop.waiting_stock`).
    """
    now = datetime.now(UTC)
    await (
        StockItem.filter(order_id=order.id, status=S.RESERVED)
        .using_db(conn)
        .update(status=S.SOLD, sold_at=now, reserved_until=None)
    )
    held = await StockItem.filter(order_id=order.id, status=S.SOLD).using_db(conn).count()
    need = order.quantity - held
    if need <= 0:
        return 0
    picked = await _pick(order.variation_id, need, conn)
    if len(picked) < need:
        return need
    await _take(picked, conn, status=S.SOLD, order_id=order.id, sold_at=now, reserved_until=None)
    return 0


async def sold_items(order_id: int, conn: Any = None) -> list[StockItem]:
    """The items sold to an order, in allocation order."""
    query = StockItem.filter(order_id=order_id, status=S.SOLD)
    if conn is not None:
        query = query.using_db(conn)
    return await query.order_by("id")

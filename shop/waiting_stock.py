"""Fill orders that were paid while their product was out of stock (`waiting_stock`).

Oldest order first, each in its own DB transaction: lock the order, check it still waits,
take the stock it still lacks (`SKIP LOCKED` on PostgreSQL, so two runs never pick the same
item; SQLite serialises writers) and mark those items sold to it. An order is filled whole or
not at all, so a big order never holds back smaller ones behind it. After the commit the
order is handed to its instance's delivery stream; it stays `waiting_stock` until the worker
delivers it (`waiting_stock → delivered` is in the table; `→ paid` is not). The fill sets the
order's `wake_at` in its transaction, so a lost hand-off is woken by the reconciler's relay
(`shop.outbox`) within seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis
from tortoise.transactions import in_transaction

from core import audit
from shop.models import Order, StockItem
from shop.outbox import WAKE_GRACE, enqueue_delivery
from shop.states import OrderStatus, StockStatus

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class RetryReport:
    delivered: int = 0  # filled and handed to delivery
    still_waiting: int = 0
    order_ids: list[int] = field(default_factory=list)
    not_enqueued: list[int] = field(default_factory=list)  # filled, Redis hand-off failed


async def _held_by(order_id: int, conn: Any) -> int:
    return (
        await StockItem.filter(
            order_id=order_id, status__in=(StockStatus.SOLD, StockStatus.RESERVED)
        )
        .using_db(conn)
        .count()
    )


async def _fill_one(order_id: int, actor: str) -> bool:
    """Allocate the missing stock to one waiting order; False if there is not enough."""
    async with in_transaction() as conn:
        order = await Order.filter(id=order_id).using_db(conn).select_for_update().first()
        if order is None or order.status != OrderStatus.WAITING_STOCK:
            return False
        need = order.quantity - await _held_by(order.id, conn)
        if need > 0:
            picked = (
                await StockItem.filter(
                    variation_id=order.variation_id, status=StockStatus.AVAILABLE
                )
                .using_db(conn)
                .select_for_update(skip_locked=True)
                .order_by("id")
                .limit(need)
                .values_list("id", flat=True)
            )
            if len(picked) < need:
                return False
            now = datetime.now(UTC)
            updated = (
                await StockItem.filter(id__in=list(picked), status=StockStatus.AVAILABLE)
                .using_db(conn)
                .update(
                    status=StockStatus.SOLD, order_id=order.id, sold_at=now, reserved_until=None
                )
            )
            if updated != need:  # another allocator won an item: roll back, try next time
                raise _Raced()
        # held items that were only reserved become sold: they now belong to a paid order
        await (
            StockItem.filter(order_id=order.id, status=StockStatus.RESERVED)
            .using_db(conn)
            .update(status=StockStatus.SOLD, sold_at=datetime.now(UTC), reserved_until=None)
        )
        # filled: it owes a delivery again, recorded with the items it now holds (shop.outbox)
        await (
            Order.filter(id=order.id).using_db(conn).update(wake_at=datetime.now(UTC) + WAKE_GRACE)
        )
        await audit.record(
            actor,
            "order.stock_allocated",
            "order",
            order.id,
            tenant_id=order.tenant_id,
            before={"status": str(order.status)},
            after={"status": str(order.status), "allocated": max(need, 0)},
            using_db=conn,
        )
    return True


class _Raced(Exception):
    """Another allocator won an item between our select and our update."""


async def retry_waiting_stock(
    tenant_id: int | None = None,
    product_id: int | None = None,
    *,
    redis: Redis | None = None,
    actor: str = "system:waiting_stock",
) -> RetryReport:
    """Fill waiting orders oldest first; returns how many were filled and how many still wait."""
    query = Order.filter(status=OrderStatus.WAITING_STOCK)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if product_id is not None:
        query = query.filter(product_id=product_id)
    report = RetryReport()
    waiting = await query.count()
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    ids = cast(
        list[int], await query.order_by("paid_at", "id").limit(BATCH).values_list("id", flat=True)
    )
    for order_id in ids:
        try:
            filled = await _fill_one(order_id, actor)
        except _Raced:
            filled = False
        if not filled:
            continue
        report.delivered += 1
        report.order_ids.append(order_id)
        order = await Order.get(id=order_id)
        if await enqueue_delivery(redis, order) is None:
            report.not_enqueued.append(order_id)
    report.still_waiting = waiting - report.delivered
    return report

"""What the staff do from a ticket, without Discord: a replacement from stock, a refund under
the portal's money rules, and the order summary the ticket opens with (items masked).

A replacement marks the sold item `replaced` and lets `shop.allocation.sell` take the one the
order now lacks, in one transaction: with no stock left nothing changes (`OutOfStock`). A refund
is `shop.payments.refunds.refund_order`, the portal's own path: the balance check and refund
holds apply, and a second press asks Mercado Pago nothing (the payment is refunded already).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from core.vault import TokenVault
from shop import allocation
from shop.allocation import OutOfStock
from shop.errors import ShopError
from shop.models import Order, StockItem, Ticket, Variation
from shop.payments.payment_bookings import SyncResult
from shop.payments.refunds import refund_order
from shop.payments.service import PaymentServices
from shop.states import OrderStatus, StockStatus
from shop.tickets import mask, record_action

S = StockStatus


class NothingToReplace(ShopError):
    code = "ticket_nothing_to_replace"
    message_key = "tickets.error.nothing_to_replace"


@dataclass(frozen=True)
class Summary:
    """The order as the ticket shows it (items masked: a ticket is never where stock is read)."""

    order: Order
    product: str
    variation: str
    paid_at: datetime | None
    items: list[tuple[int, str]]  # (stock item id, masked content)


async def summary(order_id: int, vault: TokenVault) -> Summary:
    order = await Order.get(id=order_id)
    variation = await Variation.get(id=order.variation_id).prefetch_related("product")
    sold = await allocation.sold_items(order.id)
    items = [(int(i.id), mask(vault.decrypt(i.content_enc).reveal())) for i in sold]
    return Summary(order, variation.product.name, variation.name, order.paid_at, items)


async def replace_item(ticket: Ticket, item_id: int | None, actor: str) -> tuple[int, int]:
    """Swap one item sold to the ticket's order (`item_id`, or the first) for a new one from
    the variation's stock; returns (old id, new id). Audited on the order."""
    async with in_transaction() as conn:
        order = await Order.filter(id=ticket.order_id).using_db(conn).select_for_update().get()
        if order.status != OrderStatus.DELIVERED:
            raise NothingToReplace(f"order {order.id} is {order.status}")
        sold = await allocation.sold_items(order.id, conn)
        old = next((i for i in sold if item_id is None or i.id == item_id), None)
        if old is None:
            raise NothingToReplace(f"item {item_id} is not sold to order {order.id}")
        await StockItem.filter(id=old.id, status=S.SOLD).using_db(conn).update(status=S.REPLACED)
        if await allocation.sell(conn, order):
            raise OutOfStock(f"no stock to replace item {old.id} of order {order.id}")
        new = [
            i.id
            for i in await allocation.sold_items(order.id, conn)
            if i.id not in {s.id for s in sold}
        ]
    await record_action(
        ticket, "replaced", actor, {"old_item_id": old.id, "new_item_id": new[0] if new else None}
    )
    return int(old.id), int(new[0]) if new else 0


async def refund(svc: PaymentServices, ticket: Ticket, actor: str) -> SyncResult:
    """Refund what is left of the order, under the seller's money rules (the portal's path)."""
    result = await refund_order(svc, ticket.order_id, actor)
    await record_action(ticket, "refunded", actor)
    return result

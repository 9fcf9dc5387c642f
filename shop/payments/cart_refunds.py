"""Refunding one line of a cart (issue 17): the cart's one PIX is partially refunded for that
line's total (its share of the discount taken off), under the same money rules as any refund
(`shop.payments.refunds`: the seller's balance covers it, a refund hold, operators audited),
and only that line's order moves to `refunded` (its access revoked). The sync books the
partial refund against the cart's one sale. Refunding what is left of the payment (the last
line, or the whole cart) is a full refund: the sync then refunds every line still paid.

Mercado Pago keys a refund request by `X-Idempotency-Key`: a line's key names the line, so a
second press refunds nothing more and two lines of the same price are never taken for one.
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from shop.access_revoke import change_note, revoke_for_order
from shop.models import Order, Payment
from shop.orders import transition
from shop.payments.payment_bookings import SyncResult
from shop.states import OrderStatus


def line_refund_key(payment: Payment, order: Order) -> str:
    return f"refund-{payment.id}-line-{order.id}"


def already_refunded(order: Order, payment: Payment) -> SyncResult | None:
    """The answer to a second refund of a line that is refunded already (nothing is asked of
    Mercado Pago); None when the line still holds money."""
    if order.status != OrderStatus.REFUNDED:
        return None
    return SyncResult(
        "processed",
        str(payment.id),
        payment.provider_payment_id,
        order.id,
        detail=f"cart line {order.id} was refunded already",
    )


async def close_line(order_id: int, actor: str, result: SyncResult) -> None:
    """After Mercado Pago refunded the line's total: the line's order is refunded (its
    reserved stock or units released, its access revoked); no-op if it already is."""
    async with in_transaction() as conn:
        moved = await transition(
            order_id, OrderStatus.REFUNDED, actor, reason="cart line refunded", using_db=conn
        )
        if not moved.changed:
            return
        result.changes.append(f"order {order_id} {moved.before} → refunded (cart line)")
        revoked = await revoke_for_order(moved.order, "refund", using_db=conn)
        if revoked is not None:
            result.changes.append(change_note(revoked))

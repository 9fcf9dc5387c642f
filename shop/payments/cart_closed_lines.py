"""A cart's PIX approved after some of its lines closed unpaid (issue 17 follow-up).

A line of an open cart can close on its own: the buyer's "Cancelar" on one line's order
(`shop.orders.cancel_order`, `vt:cancel:<order>`) cancels that order, releasing its stock and
coupon use, while the cart's one PIX stays payable for the whole total. When that PIX is then
approved the other lines are paid and delivered as usual, and the closed lines' share goes back
to the buyer, as a single order paid after it closed is refunded (`shop.payments.sync`): one
partial refund of exactly the closed lines' totals, idempotency key `autorefund-<payment>-
lines-<ids>`, under the payment's refund lease, then synced at once so the sync books it
against the cart's one sale like any partial refund (the fee given back pro rata). It is
requested again by a later sync (webhook, reconciler, resync) until Mercado Pago has it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime, timedelta

from core import audit
from core.i18n import format_brl
from shop.errors import RefundInProgress, ShopError
from shop.models import Order, Payment
from shop.payments import refund_lease
from shop.payments.payment_bookings import SyncResult
from shop.payments.service import PaymentServices
from shop.states import OrderStatus, PaymentStatus

log = logging.getLogger("shop.payments.sync")
CLOSED_UNPAID = frozenset({OrderStatus.EXPIRED, OrderStatus.CANCELLED})
RETRY_WINDOW = timedelta(days=2)  # the reconciler asks again for this long after approval
# Set while the refund just requested is synced, so that sync does not request it again.
_settling: ContextVar[bool] = ContextVar("cart_closed_lines_settling", default=False)


async def owed_cents(payment: Payment) -> tuple[list[int], int]:
    """(the cart's lines closed unpaid, what of their totals Mercado Pago has not refunded yet)
    for an approved cart payment with some lines paid; ([], 0) otherwise. Refunds of paid
    lines (their own totals) are set aside; what remains of `refunded_cents` covers them."""
    if payment.cart_id is None or payment.status != PaymentStatus.APPROVED:
        return [], 0
    lines = await Order.filter(cart_id=payment.cart_id).only("id", "status", "total_cents")
    closed = sorted(o.id for o in lines if o.status in CLOSED_UNPAID)
    if not closed or len(closed) == len(lines):  # none, or all: the whole PIX (sync)
        return [], 0
    share = sum(o.total_cents for o in lines if o.id in closed)
    lines_refunded = sum(o.total_cents for o in lines if o.status == OrderStatus.REFUNDED)
    return closed, max(0, min(share, share + lines_refunded - payment.refunded_cents))


async def refund_closed_lines(
    svc: PaymentServices,
    payment: Payment,
    actor: str,
    result: SyncResult,
    resync: Callable[[], Awaitable[SyncResult]],
) -> None:
    """After the sync committed: give back the closed lines' share of an approved cart PIX
    (nothing if none is owed), then `resync` to book it. A refund in flight, or Mercado Pago
    refusing or not answering, leaves it for the next sync (noted in `result.detail`)."""
    if _settling.get() or not payment.provider_payment_id:
        return
    closed, owed = await owed_cents(payment)
    if owed <= 0:
        return
    share = sum(o.total_cents for o in await Order.filter(id__in=closed).only("total_cents"))
    try:
        token = await refund_lease.claim(str(payment.id), closed[0])
    except RefundInProgress:
        result.detail = "closed cart lines' refund waits for a refund in flight"
        return
    try:
        key = f"autorefund-{payment.id}-lines-{'-'.join(map(str, closed))}"
        left = payment.amount_cents - payment.refunded_cents
        try:
            await svc.gateway.refund(payment.provider_payment_id, key, min(share, left))
        except ShopError as exc:
            result.detail = f"automatic refund of closed cart lines failed, will retry: {exc}"
            log.error("payment %s: %s", payment.id, result.detail)
            return
        result.changes.append(
            f"refund of {format_brl(share)} requested at Mercado Pago "
            f"(cart lines {', '.join(map(str, closed))} closed before the PIX was paid)"
        )
        await audit.record(
            actor,
            "payment.auto_refund",
            "payment",
            payment.id,
            tenant_id=payment.tenant_id,
            before={"status": str(payment.status), "refunded_cents": payment.refunded_cents},
            after={
                "reason": "paid after some cart lines closed",
                "order_ids": closed,
                "amount_cents": share,
            },
        )
        settling = _settling.set(True)
        try:
            result.changes += (await resync()).changes
        finally:
            _settling.reset(settling)
    finally:
        await refund_lease.release(str(payment.id), token)


async def payments_owing(now: datetime, limit: int) -> list[Payment]:
    """Approved cart payments (of the last `RETRY_WINDOW`) whose closed lines' share has not
    gone back yet (the refund failed, or waited for a refund in flight): the reconciler syncs
    them again, which asks for it again."""
    candidates = (
        await Payment.filter(
            status=PaymentStatus.APPROVED,
            cart_id__isnull=False,
            approved_at__gte=now - RETRY_WINDOW,
            cart__orders__status__in=tuple(CLOSED_UNPAID),
        )
        .distinct()
        .order_by("-approved_at")
        .limit(limit * 4)
    )
    return [p for p in candidates if (await owed_cents(p))[1] > 0][:limit]

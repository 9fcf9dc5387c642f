"""Refunds the seller or an operator asks for: Mercado Pago returns the money, then the same
sync path as a webhook moves the order to `refunded` and reverses the sale in the ledger.

Mercado Pago pays a refund from the platform's account, which holds every seller's money. So a
seller's refund must be covered by their own balance (available + on hold): under the tenant
lock it is checked (`refund_policy.decide_seller_refund`) and the debit reserved in the ledger
(a refund hold) before the request leaves, so two refunds, or a refund and a withdrawal, cannot
spend the same money; the sync releases the hold in the transaction that books the refund.
Operators refund without the check (`operator_refund`, audited with their reason).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import audit
from core.i18n import format_brl
from shop import ledger, refund_holds
from shop.errors import (
    InvalidAmount,
    InvalidStateChange,
    OrderNotFound,
    PaymentNotFound,
    ReasonRequired,
    RefundNotCovered,
    ShopError,
)
from shop.models import LedgerEntry, Order, Payment, Tenant
from shop.payments import cart_refunds
from shop.payments.connected_gateway import is_connected_payment
from shop.payments.payment_bookings import SyncResult
from shop.payments.refund_lease import refund_lease
from shop.payments.refund_policy import decide_seller_refund
from shop.payments.service import PaymentServices
from shop.payments.sync import sync_provider_payment
from shop.states import PAID_ORDER_STATES, OrderStatus, PaymentStatus

# A hold still outstanding after this long belongs to a request that never reached Mercado
# Pago (the process died in between); if Mercado Pago did refund, the sync books it anyway.
STALE_HOLD = timedelta(minutes=15)
MAX_REASON = 1000


async def refund_order(
    svc: PaymentServices,
    order_id: int,
    actor: str,
    amount_cents: int | None = None,
    *,
    whole_cart: bool = False,
) -> SyncResult:
    """The seller refunds a paid order's PIX: all that is left of it, or `amount_cents`. A
    cart line gives back its own total and only it is refunded (`shop.payments.cart_refunds`),
    unless `whole_cart` (then all that is left of the cart's PIX: every line).

    Raises `RefundNotCovered` (nothing sent to Mercado Pago) when the seller's balance does not
    cover what the refund would take from it. Safe to call twice: the request carries an
    idempotency key, and the sync only moves forward.
    """
    return await _refund(svc, order_id, actor, amount_cents, reason=None, whole_cart=whole_cart)


async def operator_refund(
    svc: PaymentServices,
    order_id: int,
    actor: str,
    reason: str,
    amount_cents: int | None = None,
    *,
    whole_cart: bool = False,
) -> SyncResult:
    """An operator refunds without the balance check, knowingly leaving the seller's balance
    negative (withdrawals stay blocked until it is covered); audited with `reason`."""
    reason = reason.strip()[:MAX_REASON]
    if not reason:
        raise ReasonRequired("an operator refund needs a reason")
    return await _refund(svc, order_id, actor, amount_cents, reason=reason, whole_cart=whole_cart)


async def _refund(
    svc: PaymentServices,
    order_id: int,
    actor: str,
    amount_cents: int | None,
    reason: str | None,
    whole_cart: bool = False,
) -> SyncResult:
    """One refund of the payment at a time (`shop.payments.refund_lease`): what is left is
    read again, reserved, sent and booked under the payment's lease."""
    _, payment, _ = await _refundable(order_id)
    async with refund_lease(str(payment.id), order_id):
        return await _refund_leased(svc, order_id, actor, amount_cents, reason, whole_cart)


async def _refund_leased(
    svc: PaymentServices,
    order_id: int,
    actor: str,
    amount_cents: int | None,
    reason: str | None,
    whole_cart: bool,
) -> SyncResult:
    order, payment, provider_id = await _refundable(order_id)
    line = order.cart_id is not None and amount_cents is None and not whole_cart
    if line:  # one line of a cart: its own total, once (shop.payments.cart_refunds)
        done = cart_refunds.already_refunded(order, payment)
        if done is not None:
            return done
        amount_cents = min(order.total_cents, payment.amount_cents - payment.refunded_cents)
    if payment.status == PaymentStatus.APPROVED:
        target, amount = _target(payment, amount_cents)
        hold = None
        # A connected store's refund comes out of the seller's own Mercado Pago account (the
        # router uses their token): the platform balance is neither checked nor touched.
        connected = await is_connected_payment(payment.id)
        if reason is None and not connected:
            try:
                hold = await _reserve(payment, target)
            except RefundNotCovered as exc:
                await audit.record(
                    actor,
                    "payment.refund_refused",
                    "payment",
                    payment.id,
                    tenant_id=order.tenant_id,
                    before=None,
                    after={"order_id": order.id, **exc.params},
                )
                raise
        key = f"refund-{payment.id}" if amount is None else f"refund-{payment.id}-{target}"
        if line:
            key = cart_refunds.line_refund_key(payment, order)
        try:
            await svc.gateway.refund(provider_id, key, amount)
        except ShopError:
            if hold is not None:  # nothing was refunded: the money is the seller's again
                await _release(payment, only_key=hold)
            raise
        await audit.record(
            actor,
            "payment.refund_requested",
            "payment",
            payment.id,
            tenant_id=order.tenant_id,
            before={"status": "approved"},
            after={
                "order_id": order.id,
                "amount_cents": target - payment.refunded_cents,
                "reason": reason,
                "balance_check": "seller's own account"
                if connected
                else "covered"
                if reason is None
                else "skipped (operator)",
            },
        )
    result = await sync_provider_payment(svc, provider_id, actor)
    await _release(payment)  # holds the booked refund now covers (if the sync did not)
    if line:
        await cart_refunds.close_line(order.id, actor, result)
    return result


async def _refundable(order_id: int) -> tuple[Order, Payment, str]:
    order = await Order.get_or_none(id=order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    if OrderStatus(order.status) not in PAID_ORDER_STATES | {OrderStatus.REFUNDED}:
        raise InvalidStateChange(f"order {order_id} is {order.status}: nothing was paid")
    payment = (
        await Payment.filter(
            Q(order_id=order.id) | Q(cart_id=order.cart_id or -1),  # a cart line: its cart's
            status__in=(PaymentStatus.APPROVED, PaymentStatus.REFUNDED),
        )
        .order_by("-created_at")
        .first()
    )
    if payment is None or not payment.provider_payment_id:
        raise PaymentNotFound(f"order {order_id} has no approved payment")
    return order, payment, payment.provider_payment_id


def _target(payment: Payment, amount_cents: int | None) -> tuple[int, int | None]:
    """(refunded total after this refund, amount to ask for; None = all that is left)."""
    left = payment.amount_cents - payment.refunded_cents
    if amount_cents is None or amount_cents == left:
        return payment.amount_cents, None
    if not 0 < amount_cents < left:
        raise InvalidAmount(f"refund of {amount_cents} with {left} left to refund")
    return payment.refunded_cents + amount_cents, amount_cents


async def _reserve(payment: Payment, target: int) -> str | None:
    """Check the seller's balance covers the refund and hold the debit, under the tenant lock
    (the one withdrawals take); raises `RefundNotCovered`. None when it takes nothing."""
    await _release(payment, created_before=datetime.now(UTC) - STALE_HOLD)
    async with in_transaction() as conn:
        await Tenant.filter(id=payment.tenant_id).using_db(conn).select_for_update().first()
        debit = await ledger.refund_debit(str(payment.id), target, using_db=conn)
        balance = await ledger.balance(payment.tenant_id, using_db=conn)
        decision = decide_seller_refund(balance.total_cents, debit)
        if not decision.allowed:
            raise RefundNotCovered(
                f"refund takes {debit}, balance is {balance.total_cents}",
                balance=format_brl(balance.total_cents),
                debit=format_brl(debit),
                missing=format_brl(decision.shortfall_cents),
            )
        if debit <= 0:
            return None
        return await refund_holds.hold_refund(
            str(payment.id), target, payment.tenant_id, debit, payment.order_id, using_db=conn
        )


async def _release(
    payment: Payment, *, only_key: str | None = None, created_before: datetime | None = None
) -> None:
    """Release the payment's holds: `only_key`, those older than `created_before`, or (with
    neither) those the refunds booked so far cover; under the payment row lock, as the sync."""
    async with in_transaction() as conn:
        locked = await Payment.filter(id=payment.id).using_db(conn).select_for_update().get()
        covered = None
        if only_key is None and created_before is None:
            covered = (
                locked.amount_cents
                if locked.status in (PaymentStatus.REFUNDED, PaymentStatus.CHARGED_BACK)
                else locked.refunded_cents
            )
        await refund_holds.release_refund_holds(
            str(locked.id),
            locked.tenant_id,
            covered_total_cents=covered,
            created_before=created_before,
            only_key=only_key,
            using_db=conn,
        )


async def release_stale_holds(
    svc: PaymentServices, now: datetime | None = None, batch: int = 50
) -> int:
    """Give back refund holds left by a process that died between the hold and Mercado Pago's
    answer: each such payment is synced first (a refund that did reach Mercado Pago is booked),
    then what is still held is released. The reconciler calls this every pass; holds older than
    a day were already seen by earlier passes. Returns how many payments were settled."""
    cutoff = (now or datetime.now(UTC)) - STALE_HOLD
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    hold_keys = cast(
        list[str],
        await LedgerEntry.filter(
            account=ledger.HOLDS,
            idempotency_key__startswith="refund_hold:",
            created_at__lt=cutoff,
            created_at__gte=cutoff - timedelta(days=1),
        )
        .order_by("id")
        .limit(batch * 4)
        .values_list("idempotency_key", flat=True),
    )
    payment_ids = {key.split(":")[1] for key in hold_keys}
    settled = 0
    for payment in await Payment.filter(id__in=sorted(payment_ids)[:batch]):
        if not await refund_holds.refund_holds(str(payment.id), payment.tenant_id):
            continue
        if payment.provider_payment_id:
            await sync_provider_payment(svc, payment.provider_payment_id, "reconciler")
        await _release(payment, created_before=cutoff)
        settled += 1
    return settled

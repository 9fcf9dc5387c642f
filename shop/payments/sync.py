"""Bring one local payment (and its order and the ledger) in line with Mercado Pago.

The webhook, the periodic reconciler and the admin's resync all end here. We never trust a
notification: the caller fetched the payment from the API, and states move forward only, so
applying the same (or an older) picture again changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from shop import blocklist, ledger
from shop.access_revoke import change_note, revoke_for_order
from shop.cart_lookup import payment_order_ids
from shop.errors import PaymentNotFound, ShopError
from shop.models import BlockSource, Order, Payment
from shop.orders import transition
from shop.outbox import enqueue_delivery
from shop.payments import cart_closed_lines, payment_bookings
from shop.payments.gateway import ProviderPayment
from shop.payments.payment_bookings import SyncResult
from shop.payments.payment_transitions import payment_path, transition_payment
from shop.payments.service import PaymentServices, provider_snapshot
from shop.states import PAID_ORDER_STATES, OrderStatus, PaymentStatus

log = logging.getLogger(__name__)
O, P = OrderStatus, PaymentStatus  # noqa: E741 - as in shop.states

# MP statuses we do not model map onto ours: a dispute (in_mediation) keeps the payment
# approved until it ends as refunded/charged_back; authorized is still in process.
_STATUS_MAP = {s.value: s for s in PaymentStatus} | {
    "authorized": P.IN_PROCESS,
    "in_mediation": P.APPROVED,
}
_CLOSED_UNPAID = frozenset({O.EXPIRED, O.CANCELLED})


def order_plan(order: OrderStatus, payment: PaymentStatus) -> list[OrderStatus]:
    """The order steps a payment status calls for (forward only; [] when nothing to do)."""
    if payment == P.APPROVED:
        return [O.PAID] if order == O.PENDING else []
    if payment in (P.REFUNDED, P.CHARGED_BACK):
        if order == O.PENDING:
            return [O.PAID, O.REFUNDED]  # approved then refunded while we were not looking
        return [O.REFUNDED] if order in PAID_ORDER_STATES else []
    if payment in (P.CANCELLED, P.REJECTED):
        return [O.EXPIRED] if order == O.PENDING else []
    return []


async def find_local(remote: ProviderPayment) -> Payment | None:
    """Our payment for a provider payment: by provider id, else by external reference."""
    found = await Payment.get_or_none(provider_payment_id=remote.id)
    if found is not None or not remote.external_reference:
        return found
    try:
        ref = uuid.UUID(remote.external_reference)
    except ValueError:
        return None
    return await Payment.get_or_none(id=ref)


async def _update_payment(
    payment: Payment,
    remote: ProviderPayment,
    target: PaymentStatus,
    actor: str,
    conn: Any,
    result: SyncResult,
    via: str = "",
) -> None:
    before = PaymentStatus(payment.status)
    path = payment_path(before, target)
    if path is None:  # older news than what we know (or an impossible move): ignore
        log.info("payment %s: ignoring %s -> %s", payment.id, before, target)
        path = []
    if not path and _older_refund_picture(payment, remote):
        log.info(
            "payment %s: ignoring a picture with %s refunded (we know %s)",
            payment.id,
            remote.refunded_cents,
            payment.refunded_cents,
        )
        payment.last_checked_at = datetime.now(UTC)
        await payment.save(using_db=conn, update_fields=["last_checked_at"])
        return
    if path:
        await transition_payment(
            payment,
            path,
            actor,
            using_db=conn,
            after={
                "status": str(target),
                "status_detail": remote.status_detail,
                "provider_payment_id": remote.id,
            },
        )
        if P.APPROVED in path and not payment.confirmed_via:
            payment.confirmed_via = via or confirmation_source(actor)
        result.changes.append(f"payment {' → '.join([before, *path])}")
    if not payment.provider_payment_id:
        payment.provider_payment_id = remote.id
        result.changes.append(f"provider payment id {remote.id} recorded")
    if path or payment.status_detail != remote.status_detail:
        payment.status_detail = remote.status_detail[:60]
    if remote.approved_at and not payment.approved_at:
        payment.approved_at = remote.approved_at
    payment.refunded_cents = max(payment.refunded_cents, remote.refunded_cents)
    payment.last_checked_at = datetime.now(UTC)
    payment.provider_data = provider_snapshot(remote)
    await payment.save(using_db=conn)


async def _move_order(
    svc: PaymentServices,
    payment: Payment,
    order_id: int,
    actor: str,
    conn: Any,
    result: SyncResult,
    dispute: BlockSource | None = None,
) -> tuple[bool, bool]:
    """Apply the order plan inside the transaction; (became_paid, needs_refund)."""
    order = await Order.filter(id=order_id).using_db(conn).select_for_update().get()
    status = PaymentStatus(payment.status)
    if status == P.APPROVED and order.status in _CLOSED_UNPAID:
        return False, True
    became_paid = False
    for step in order_plan(OrderStatus(order.status), status):
        moved = await transition(
            order.id,
            step,
            actor,
            using_db=conn,
            reason=f"payment {payment.provider_payment_id} {status}",
        )
        if not moved.changed:
            continue
        result.changes.append(f"order {order.id} {moved.before} → {moved.after}")
        if step == O.PAID:
            became_paid = True
            await payment_bookings.book_sale(svc, payment, order, conn, result)
        elif step == O.REFUNDED:
            became_paid = False
            kind = "chargeback" if status == P.CHARGED_BACK else "refund"
            if await ledger.book_reversal(str(payment.id), kind, using_db=conn):
                result.changes.append(f"ledger: {kind} reversal booked")
                result.refund_booked = kind
            # the roles the order granted go (shop.access): refund, chargeback or MED
            revoked = await revoke_for_order(order, str(dispute or kind), using_db=conn)
            if revoked is not None:
                result.changes.append(change_note(revoked))
    return became_paid, False


def _older_refund_picture(local: Payment, remote: ProviderPayment) -> bool:
    """Refunds only grow: a picture with less refunded than we recorded was taken before the
    one we applied (two fetches raced), so nothing in it is news."""
    recorded: int = local.refunded_cents  # BigIntField reads back untyped (Any)
    return remote.refunded_cents < recorded


def _dispute(local: Payment, target: PaymentStatus) -> BlockSource | None:
    """A chargeback or MED reversal this picture brings (only when the status moves now)."""
    if not payment_path(PaymentStatus(local.status), target):
        return None
    return blocklist.dispute_source((local.provider_data or {}).get("status"), target)


async def _needs_write(local: Payment, remote: ProviderPayment, target: PaymentStatus) -> bool:
    """False when applying `remote` would change nothing (checked again under the lock)."""
    status = PaymentStatus(local.status)
    if payment_path(status, target) or local.provider_payment_id != remote.id:
        return True
    last_seen = (local.provider_data or {}).get("status")
    if remote.status == "in_mediation" and last_seen != "in_mediation":
        return True  # a dispute opened: kept, so a refund after it is known as a MED
    if _older_refund_picture(local, remote):
        return False
    if (
        local.status_detail != remote.status_detail[:60]
        or local.refunded_cents != remote.refunded_cents
        or (remote.approved_at is not None and local.approved_at is None)
    ):
        return True
    if (
        status == P.APPROVED
        and 0 < remote.refunded_cents <= local.amount_cents
        and not await ledger.already_booked(ledger.refund_key(str(local.id), remote.refunded_cents))
    ):
        return True  # recorded but not booked (before partial refunds were booked): book it
    order_status = OrderStatus((await Order.get(id=local.order_id)).status)
    return (
        bool(order_plan(order_status, status))
        or (status == P.APPROVED and order_status in _CLOSED_UNPAID)
        or (await cart_closed_lines.owed_cents(local))[1] > 0  # a closed line's share
    )


def confirmation_source(actor: str) -> str:
    """The path an actor stands for, as recorded in `Payment.confirmed_via`."""
    if actor == "system:webhook":
        return "webhook"
    if actor == "system:reconciler":
        return "reconcile"
    if actor == "system:poller":
        return "poll"
    return actor.split(":", 1)[0][:16] or "other"  # admin:…, buyer:…, test:…


async def apply_provider_payment(
    svc: PaymentServices, remote: ProviderPayment, actor: str, *, via: str = ""
) -> SyncResult:
    """Apply what the provider says about one payment to our payment, order and ledger;
    `via` names the path (webhook, poll, button…) recorded if this approves the payment."""
    local = await find_local(remote)
    if local is None:
        return SyncResult(
            "unknown_payment",
            provider_payment_id=remote.id,
            detail="no local payment has this id or external reference",
        )
    result = SyncResult("processed", str(local.id), remote.id, local.order_id)
    if remote.amount_cents != local.amount_cents or remote.currency not in ("BRL", ""):
        log.error(
            "payment %s: provider amount %s %s != ours %s",
            local.id,
            remote.amount_cents,
            remote.currency,
            local.amount_cents,
        )
        result.outcome = "mismatch"
        result.detail = (
            f"provider amount {remote.amount_cents} {remote.currency} != ours {local.amount_cents}"
        )
        return result
    target = _STATUS_MAP.get(remote.status)
    if target is None:
        result.detail = f"unhandled provider status {remote.status!r}"
        return result
    if not await _needs_write(local, remote, target):  # the common replay: one cheap UPDATE
        await Payment.filter(id=local.id).update(last_checked_at=datetime.now(UTC))
        return result
    async with in_transaction() as conn:
        payment = await Payment.filter(id=local.id).using_db(conn).select_for_update().get()
        dispute = _dispute(payment, target)  # before the update overwrites the last picture
        await _update_payment(payment, remote, target, actor, conn, result, via)
        # A cart's payment moves every line (shop.cart_lookup); the sale is booked once.
        paid_ids, closed = [], []
        for order_id in await payment_order_ids(payment, conn):
            became_paid, refund = await _move_order(
                svc, payment, order_id, actor, conn, result, dispute
            )
            paid_ids += [order_id] if became_paid else []
            closed.append(refund)
        needs_refund = all(closed)  # paid after every line closed unpaid
        await payment_bookings.book_partial_refund(payment, remote, actor, conn, result)
        await payment_bookings.settle_refund(payment, conn, result)
        if dispute and await blocklist.block_disputing_buyer(payment, dispute, actor, conn):
            result.changes.append(f"buyer blocked in the store ({dispute})")
    for order in await Order.filter(id__in=paid_ids).order_by("id"):
        if await enqueue_delivery(svc.redis, order):
            line = f" (order {order.id})" if payment.cart_id else ""
            result.changes.append(f"delivery enqueued{line}")
    if needs_refund:
        await _refund_orphan(svc, payment, remote, actor, result)
    else:  # some lines of a cart closed unpaid: their share goes back (and is booked)
        await cart_closed_lines.refund_closed_lines(
            svc, payment, actor, result, lambda: sync_provider_payment(svc, remote.id, actor)
        )
    return result


async def _refund_orphan(
    svc: PaymentServices, payment: Payment, remote: ProviderPayment, actor: str, result: SyncResult
) -> None:
    """Paid after the order closed (expired/cancelled, stock released): give the money back."""
    key = f"autorefund-{payment.id}"
    try:
        await svc.gateway.refund(remote.id, idempotency_key=key)
    except ShopError as exc:
        result.detail = f"automatic refund failed, will retry: {exc}"
        log.error("payment %s: %s", payment.id, result.detail)
        return
    result.changes.append("refund requested at Mercado Pago (order already closed)")
    await audit.record(
        actor,
        "payment.auto_refund",
        "payment",
        payment.id,
        tenant_id=payment.tenant_id,
        before={"status": str(payment.status)},
        after={"reason": "paid after the order closed"},
    )


async def sync_provider_payment(
    svc: PaymentServices, provider_id: str, actor: str, *, via: str = ""
) -> SyncResult:
    """Fetch a provider payment by its id and apply it (the webhook path)."""
    try:
        remote = await svc.gateway.get_payment(provider_id)
    except PaymentNotFound as exc:
        return SyncResult("unknown_payment", provider_payment_id=provider_id, detail=str(exc))
    return await apply_provider_payment(svc, remote, actor, via=via)


async def sync_payment(
    svc: PaymentServices, payment_ref: str, actor: str, *, via: str = ""
) -> SyncResult:
    """Resync one of our payments (UUID, or the provider's numeric id) with the provider;
    `via` is recorded as how it was confirmed if this approves it (default: from `actor`)."""
    local = await _find_by_ref(payment_ref)
    if local is None:
        raise PaymentNotFound(f"no payment {payment_ref!r}")
    if local.provider_payment_id:
        return await sync_provider_payment(svc, local.provider_payment_id, actor, via=via)
    found = await svc.gateway.find_by_reference(str(local.id))
    if not found:
        await Payment.filter(id=local.id).update(last_checked_at=datetime.now(UTC))
        return SyncResult(
            "not_at_provider",
            str(local.id),
            order_id=local.order_id,
            detail="Mercado Pago has no payment with this external reference",
        )
    return await apply_provider_payment(svc, found[0], actor, via=via)


async def _find_by_ref(ref: str) -> Payment | None:
    try:
        return await Payment.get_or_none(id=uuid.UUID(ref))
    except ValueError:
        return await Payment.get_or_none(provider_payment_id=ref)

"""What a payment change books: the result of one sync (`SyncResult`), the sale, a partial
refund, and settling refund holds (with the negative-balance alert), each in the sync's
transaction. `shop.payments.sync` decides; this module writes the ledger side."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from core import audit
from core.i18n import format_brl
from shop import ledger, refund_holds
from shop.balance_alerts import alert_if_negative
from shop.cents import fee_cents
from shop.models import Order, Payment
from shop.notify.seller import notify_refund
from shop.payments.connected_gateway import record_connected_sale
from shop.payments.gateway import ProviderPayment
from shop.payments.service import PaymentServices
from shop.states import PaymentStatus

log = logging.getLogger("shop.payments.sync")
P = PaymentStatus


@dataclass
class SyncResult:
    """What reconciling one payment did; `changes` is empty when nothing changed."""

    outcome: str  # processed | unknown_payment | mismatch | not_at_provider
    payment_id: str | None = None
    provider_payment_id: str | None = None
    order_id: int | None = None
    changes: list[str] = field(default_factory=list)
    detail: str = ""
    refund_booked: str = ""  # what was booked against the seller now: refund, chargeback…

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "payment_id": self.payment_id,
            "provider_payment_id": self.provider_payment_id,
            "order_id": self.order_id,
            "changed": self.changed,
            "changes": self.changes or ["no change"],
            "detail": self.detail,
        }


async def book_partial_refund(
    payment: Payment, remote: ProviderPayment, actor: str, conn: Any, result: SyncResult
) -> None:
    """Part of a payment that stays approved went back to the buyer: take that share (less its
    part of the fee) from the seller. A full refund or chargeback is the order's reversal."""
    total = payment.refunded_cents  # the most we know was refunded (never an older picture)
    if payment.status != P.APPROVED or total <= 0:
        return
    if total > payment.amount_cents:
        result.detail = f"provider refunded {total} of a payment of {payment.amount_cents}"
        log.error("payment %s: %s", payment.id, result.detail)
        return
    booked = await ledger.book_partial_refund(str(payment.id), total, using_db=conn)
    if booked is None:  # no sale (order closed unpaid), or this total was booked already
        return
    result.refund_booked = "partial refund"
    result.changes.append(
        f"ledger: partial refund {format_brl(booked.amount_cents)} booked "
        f"(seller −{format_brl(booked.seller_cents)}, fee −{format_brl(booked.fee_cents)}; "
        f"{format_brl(total)} of {format_brl(payment.amount_cents)} refunded in all)"
    )
    await audit.record(
        actor,
        "payment.partially_refunded",
        "payment",
        payment.id,
        tenant_id=payment.tenant_id,
        before={"refunded_cents": total - booked.amount_cents},
        after={
            "refunded_cents": total,
            "seller_cents": -booked.seller_cents,
            "fee_cents": -booked.fee_cents,
            "provider_payment_id": remote.id,
        },
        using_db=conn,
    )


async def settle_refund(payment: Payment, conn: Any, result: SyncResult) -> None:
    """In the booking's transaction: give back the seller-refund holds the refunded total now
    covers, and alert operators once per booking that leaves the seller's balance negative."""
    reversed_ = payment.status in (P.REFUNDED, P.CHARGED_BACK)
    covered = payment.amount_cents if reversed_ else payment.refunded_cents
    if covered > 0 and await refund_holds.release_refund_holds(
        str(payment.id), payment.tenant_id, covered_total_cents=covered, using_db=conn
    ):
        result.changes.append("ledger: refund hold released")
    if result.refund_booked:
        await notify_refund(payment, result.refund_booked, conn)
        await alert_if_negative(
            payment.tenant_id,
            str(payment.id),
            payment.order_id,
            result.refund_booked,
            using_db=conn,
        )


async def _cart_memo(payment: Payment, conn: Any) -> str | None:
    """A cart's one sale names its lines: `payment … cart N: #order qty×variation, …`."""
    if payment.cart_id is None:
        return None
    lines = await Order.filter(cart_id=payment.cart_id).using_db(conn).order_by("id")
    parts = ", ".join(f"#{o.id} {o.quantity}x{o.variation_id}" for o in lines)
    return f"payment {payment.id} cart {payment.cart_id}: {parts}"


async def book_sale(
    svc: PaymentServices, payment: Payment, order: Order, conn: Any, result: SyncResult
) -> None:
    connected = await record_connected_sale(payment.id, using_db=conn)
    if connected is not None:  # paid into the seller's own account: no ledger balance
        result.changes.append(
            f"connected sale {format_brl(payment.amount_cents)} recorded (seller's Mercado Pago "
            f"account {connected.mp_user_id}, marketplace fee {format_brl(connected.fee_cents)})"
        )
        return
    booked = await ledger.book_sale(
        str(payment.id),
        order.tenant_id,
        order.id,
        payment.amount_cents,
        svc.fee_bps,
        svc.hold_days,
        using_db=conn,
        memo=await _cart_memo(payment, conn),
    )
    if booked:
        fee = fee_cents(payment.amount_cents, svc.fee_bps)
        result.changes.append(
            f"ledger: sale {format_brl(payment.amount_cents)} booked "
            f"(seller {format_brl(payment.amount_cents - fee)}, fee {format_brl(fee)})"
        )

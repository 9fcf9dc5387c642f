"""Commerce states: orders, payments, withdrawals and stock items; a transition table for each
of the first three. Stock items have none: they move by conditional updates (the expected
status in the WHERE clause) where they are reserved, sold and released.
Imports only the shared `core.errors.IllegalTransition` (which imports nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from core.errors import IllegalTransition


class OrderStatus(StrEnum):
    PENDING = "pending"  # created, stock reserved, PIX shown, waiting for payment
    PAID = "paid"  # payment approved; delivery job queued
    WAITING_STOCK = "waiting_stock"  # paid, but not enough stock to deliver
    AWAITING_FULFILMENT = "awaiting_fulfilment"  # paid manual-delivery service: staff deliver
    DELIVERED = "delivered"
    EXPIRED = "expired"  # PIX expired unpaid; reservation released
    CANCELLED = "cancelled"  # buyer cancelled before paying
    REFUNDED = "refunded"  # money returned (refund or chargeback)


class PaymentStatus(StrEnum):
    """Mercado Pago payment statuses we act on (mirrors their names)."""

    PENDING = "pending"
    APPROVED = "approved"
    IN_PROCESS = "in_process"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    CHARGED_BACK = "charged_back"


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    PROCESSING = "processing"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"  # the automatic PIX payout failed at the provider; money back on balance


class PayoutStatus(StrEnum):
    """An automatic PIX payout of one withdrawal (`shop.payouts`)."""

    QUEUED = "queued"  # the intent to pay, written with the approval; nothing sent yet
    SENT = "sent"  # sent (answer lost or transfer in progress at the provider): looked up
    PAID = "paid"  # the provider processed it; the withdrawal is completed
    FAILED = "failed"  # the provider refused it; the withdrawal failed, money back
    STUCK = "stuck"  # the answer stayed unknown too long: an operator decides


class StockStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"  # held for a pending order until its PIX expires
    SOLD = "sold"  # allocated to a paid order; never reused
    REPLACED = "replaced"  # sold, then swapped by the staff from a ticket (shop.ticket_actions)


_O, _P, _W = OrderStatus, PaymentStatus, WithdrawalStatus

FINAL_ORDER_STATES = frozenset({_O.EXPIRED, _O.CANCELLED, _O.REFUNDED})
OPEN_ORDER_STATES = frozenset({_O.PENDING, _O.PAID, _O.WAITING_STOCK, _O.AWAITING_FULFILMENT})
PAID_ORDER_STATES = frozenset({_O.PAID, _O.WAITING_STOCK, _O.AWAITING_FULFILMENT, _O.DELIVERED})

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _O.PENDING: frozenset({_O.PAID, _O.EXPIRED, _O.CANCELLED}),
    _O.PAID: frozenset({_O.DELIVERED, _O.WAITING_STOCK, _O.AWAITING_FULFILMENT, _O.REFUNDED}),
    _O.AWAITING_FULFILMENT: frozenset({_O.DELIVERED, _O.REFUNDED}),
    _O.WAITING_STOCK: frozenset({_O.DELIVERED, _O.REFUNDED}),
    _O.DELIVERED: frozenset({_O.REFUNDED}),
    _O.EXPIRED: frozenset(),
    _O.CANCELLED: frozenset(),
    _O.REFUNDED: frozenset(),
}

FINAL_PAYMENT_STATES = frozenset({_P.REJECTED, _P.CANCELLED, _P.REFUNDED, _P.CHARGED_BACK})
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.PENDING: frozenset({_P.IN_PROCESS, _P.APPROVED, _P.REJECTED, _P.CANCELLED}),
    _P.IN_PROCESS: frozenset({_P.APPROVED, _P.REJECTED, _P.CANCELLED}),
    _P.APPROVED: frozenset({_P.REFUNDED, _P.CHARGED_BACK}),
    _P.REJECTED: frozenset(),
    _P.CANCELLED: frozenset(),
    _P.REFUNDED: frozenset(),
    _P.CHARGED_BACK: frozenset(),
}

WITHDRAWAL_TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    _W.REQUESTED: frozenset({_W.PROCESSING, _W.REJECTED}),
    _W.PROCESSING: frozenset({_W.COMPLETED, _W.REJECTED, _W.FAILED}),
    _W.COMPLETED: frozenset(),
    _W.REJECTED: frozenset(),
    _W.FAILED: frozenset(),  # final: a retry is a new withdrawal (shop.payouts.retry_payout)
}


def check(table: Mapping[Any, frozenset[Any]], kind: str, current: StrEnum, new: StrEnum) -> None:
    """Raise `IllegalTransition` unless `table` allows `current -> new`."""
    if new not in table[current]:
        raise IllegalTransition(kind, str(current), str(new))

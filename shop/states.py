"""Commerce states: orders, payments, withdrawals, stock items. One table each; imports nothing."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"  # created, stock reserved, PIX shown, waiting for payment
    PAID = "paid"  # payment approved; delivery job queued
    WAITING_STOCK = "waiting_stock"  # paid, but not enough stock to deliver
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


class StockStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"  # held for a pending order until its PIX expires
    SOLD = "sold"  # allocated to a paid order; never reused


O, P, W = OrderStatus, PaymentStatus, WithdrawalStatus

FINAL_ORDER_STATES = frozenset({O.EXPIRED, O.CANCELLED, O.REFUNDED})
OPEN_ORDER_STATES = frozenset({O.PENDING, O.PAID, O.WAITING_STOCK})
PAID_ORDER_STATES = frozenset({O.PAID, O.WAITING_STOCK, O.DELIVERED})

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    O.PENDING: frozenset({O.PAID, O.EXPIRED, O.CANCELLED}),
    O.PAID: frozenset({O.DELIVERED, O.WAITING_STOCK, O.REFUNDED}),
    O.WAITING_STOCK: frozenset({O.DELIVERED, O.REFUNDED}),
    O.DELIVERED: frozenset({O.REFUNDED}),
    O.EXPIRED: frozenset(),
    O.CANCELLED: frozenset(),
    O.REFUNDED: frozenset(),
}

FINAL_PAYMENT_STATES = frozenset({P.REJECTED, P.CANCELLED, P.REFUNDED, P.CHARGED_BACK})
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.IN_PROCESS, P.APPROVED, P.REJECTED, P.CANCELLED}),
    P.IN_PROCESS: frozenset({P.APPROVED, P.REJECTED, P.CANCELLED}),
    P.APPROVED: frozenset({P.REFUNDED, P.CHARGED_BACK}),
    P.REJECTED: frozenset(),
    P.CANCELLED: frozenset(),
    P.REFUNDED: frozenset(),
    P.CHARGED_BACK: frozenset(),
}

WITHDRAWAL_TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    W.REQUESTED: frozenset({W.PROCESSING, W.REJECTED}),
    W.PROCESSING: frozenset({W.COMPLETED, W.REJECTED}),
    W.COMPLETED: frozenset(),
    W.REJECTED: frozenset(),
}


class IllegalTransition(ValueError):
    """A state change that the transition table does not allow."""

    def __init__(self, kind: str, current: str, new: str) -> None:
        super().__init__(f"illegal {kind} transition {current} -> {new}")
        self.kind = kind
        self.current = current
        self.new = new


def check(table: dict, kind: str, current: StrEnum, new: StrEnum) -> None:
    """Raise `IllegalTransition` unless `table` allows `current -> new`."""
    if new not in table[current]:
        raise IllegalTransition(kind, str(current), str(new))

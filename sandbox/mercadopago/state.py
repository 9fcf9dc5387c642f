"""In-memory payments, refunds, idempotency keys and the sandbox clock."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .brcode import build_brcode, qr_png_base64
from .config import MercadoPagoConfig
from .errors import MPError, bad_request, conflict, not_found
from .faults import Faults

# action -> (allowed from-statuses, new status, new status_detail)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "approve": (frozenset({"pending"}), "approved", "accredited"),
    "reject": (frozenset({"pending"}), "rejected", "bank_error"),
    "expire": (frozenset({"pending"}), "cancelled", "expired"),
    "cancel": (frozenset({"pending"}), "cancelled", "by_collector"),
    "refund": (frozenset({"approved"}), "refunded", "refunded"),
    "chargeback": (frozenset({"approved"}), "charged_back", "settled"),
}
_TOKEN_USER_RE = re.compile(r"-(\d{3,19})$")

Notifier = Callable[["Payment", str], None]


@dataclass
class Refund:
    """One refund of a payment."""

    id: int
    payment_id: int
    amount_cents: int
    created: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Payment:
    """One PIX payment as the fake stores it."""

    id: int
    collector_id: int
    amount_cents: int
    payer: dict[str, Any]
    description: str | None
    external_reference: str | None
    metadata: dict[str, Any]
    notification_url: str | None
    created: datetime
    expires: datetime
    qr_code: str
    qr_code_base64: str
    ticket_url: str
    status: str = "pending"
    status_detail: str = "pending_waiting_transfer"
    updated: datetime | None = None
    approved: datetime | None = None
    refunded_cents: int = 0
    refunds: list[Refund] = field(default_factory=list)
    application_fee_cents: int = 0  # marketplace fee: to the platform's account (oauth.py)


def fingerprint(body: Any) -> str:
    """A stable hash of a JSON body, for idempotency comparisons."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class MPState:
    """All mutable state of the fake; one instance per app (``app["mp_state"]``)."""

    def __init__(self, config: MercadoPagoConfig, notify: Notifier | None = None) -> None:
        self.config = config
        self.notify: Notifier = notify or (lambda payment, action: None)
        self.reset()

    def reset(self) -> None:
        """Forget payments, refunds, keys, counters, webhook log and faults; rewind clock."""
        self.payments: dict[int, Payment] = {}
        # Orders API (sandbox/mercadopago/orders.py): order id -> Order, and the order each
        # order-owned payment (its PIX transaction) belongs to.
        self.orders: dict[str, Any] = {}
        self.order_by_payment: dict[int, str] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, int]] = {}
        self.request_counts: Counter[str] = Counter()
        self.webhook_log: list[dict[str, Any]] = []
        self.faults = Faults()
        self.clock_offset = timedelta()
        self._next_payment_id = self.config.first_payment_id
        self._next_refund_id = 1
        self._next_notification_id = 1

    # --- clock and ids -------------------------------------------------
    def now(self) -> datetime:
        """Sandbox time (real UTC time plus the control-API clock offset)."""
        return datetime.now(UTC) + self.clock_offset

    def next_notification_id(self) -> int:
        """A new webhook notification id."""
        value = self._next_notification_id
        self._next_notification_id += 1
        return value

    def collector_for(self, token: str) -> int:
        """The MP user id a token belongs to (trailing digits of APP_USR-…-<user>)."""
        match = _TOKEN_USER_RE.search(token)
        return int(match.group(1)) if match else self.config.user_id

    # --- idempotency ---------------------------------------------------
    def idempotent(self, scope: str, key: str | None, body: Any) -> int | None:
        """Id stored for (scope, key) if the body matches; 409 if it differs."""
        if not key:
            return None
        stored = self.idempotency.get((scope, key))
        if stored is None:
            return None
        if stored[0] != fingerprint(body):
            raise conflict("Idempotency key already used with a different request body")
        return stored[1]

    def remember(self, scope: str, key: str | None, body: Any, result_id: int) -> None:
        """Store the outcome of a keyed request."""
        if key:
            self.idempotency[(scope, key)] = (fingerprint(body), result_id)

    # --- payments ------------------------------------------------------
    def create_payment(self, fields: dict[str, Any], ticket_base: str) -> Payment:
        """Create a pending PIX payment from validated fields and notify."""
        pid = self._next_payment_id
        self._next_payment_id += 1
        qr = build_brcode(
            amount_cents=fields["amount_cents"],
            txid=f"mpqrinter{pid}",
            merchant_name=self.config.merchant_name,
            merchant_city=self.config.merchant_city,
            pix_key=self.config.pix_key,
        )
        now = self.now()
        digest = hashlib.sha256(f"{pid}:{qr}".encode()).hexdigest()[:32]
        payment = Payment(
            id=pid,
            qr_code=qr,
            qr_code_base64=qr_png_base64(qr),
            created=now,
            updated=now,
            ticket_url=f"{ticket_base}/_sandbox/mp/payments/{pid}/ticket"
            f"?caller_id={fields['collector_id']}&hash={digest}",
            **fields,
        )
        self.payments[pid] = payment
        self.notify(payment, "payment.created")
        return payment

    def get(self, payment_id: int, collector_id: int | None = None) -> Payment:
        """A payment visible to ``collector_id`` (any if None), after lazy expiry."""
        self.expire_due()
        payment = self.payments.get(payment_id)
        if payment is None or (collector_id is not None and payment.collector_id != collector_id):
            raise not_found()
        return payment

    def transition(self, payment: Payment, action: str, *, notify: bool = True) -> Payment:
        """Apply a control action (approve, expire, …); 409 if illegal. `notify=False`: no
        webhook for this change (a notification lost on the way, see control.change_status)."""
        allowed, status, detail = TRANSITIONS[action]
        if payment.status not in allowed:
            raise MPError(
                409,
                "conflict",
                f"cannot {action} a payment in status {payment.status}",
                "invalid_status_transition",
            )
        if action == "refund":
            return self.refund(payment, None, notify=notify)
        now = self.now()
        payment.status, payment.status_detail, payment.updated = status, detail, now
        if action == "approve":
            payment.approved = now
        if notify:
            self.notify(payment, "payment.updated")
        return payment

    def refund(self, payment: Payment, amount_cents: int | None, *, notify: bool = True) -> Payment:
        """Refund ``amount_cents`` (None = the rest); updates status and notifies."""
        if payment.status != "approved":
            raise bad_request(f"Payment in status {payment.status} cannot be refunded", 2063)
        remaining = payment.amount_cents - payment.refunded_cents
        amount = remaining if amount_cents is None else amount_cents
        if amount <= 0 or amount > remaining:
            raise bad_request("Invalid refund amount: exceeds the available balance", 2085)
        now = self.now()
        payment.refunds.append(Refund(self._next_refund_id, payment.id, amount, now))
        self._next_refund_id += 1
        payment.refunded_cents += amount
        payment.updated = now
        if payment.refunded_cents == payment.amount_cents:
            payment.status, payment.status_detail = "refunded", "refunded"
        else:
            payment.status_detail = "partially_refunded"
        if notify:
            self.notify(payment, "payment.updated")
        return payment

    def expire_due(self) -> list[Payment]:
        """Cancel (status_detail ``expired``) every pending payment past its expiration."""
        now = self.now()
        due = [p for p in self.payments.values() if p.status == "pending" and p.expires <= now]
        for payment in due:
            self.transition(payment, "expire")
        return due

    def search(self, collector_id: int | None, query: dict[str, str]) -> list[Payment]:
        """Payments matching ``external_reference``/``status``, sorted like MP."""
        self.expire_due()
        found = [
            p
            for p in self.payments.values()
            if (collector_id is None or p.collector_id == collector_id)
            and (
                "external_reference" not in query
                or p.external_reference == query["external_reference"]
            )
            and ("status" not in query or p.status == query["status"])
        ]
        sort = query.get("sort", "date_created")
        keys: dict[str, Callable[[Payment], Any]] = {
            "date_created": lambda p: (p.created, p.id),
            "date_last_updated": lambda p: (p.updated or p.created, p.id),
            "date_approved": lambda p: (p.approved or datetime.min.replace(tzinfo=UTC), p.id),
            "id": lambda p: p.id,
        }
        if sort not in keys:
            raise bad_request(f"Invalid sort field: {sort}", 1000)
        reverse = query.get("criteria", "desc").lower() == "desc"
        return sorted(found, key=keys[sort], reverse=reverse)

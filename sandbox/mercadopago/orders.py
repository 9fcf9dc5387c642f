"""Orders API (`/v1/orders`) for PIX: the order model, request validation, JSON shapes and
order notifications, as Mercado Pago documents them (developers/en/...):

- create: reference/orders/online-payments/create/post and the PIX guide
  docs/checkout-api-orders/payment-integration/pix (`type: online`, one payment transaction
  with `payment_method {id: pix, type: bank_transfer}`, amounts as strings, expiry as an
  ISO-8601 duration, `X-Idempotency-Key` required);
- statuses: docs/checkout-api-orders/payment-management/status/order-status;
- errors ({"errors": [{"code", "message", "details"}]}): docs/checkout-api-orders/
  payment-management/integration-errors;
- search: reference/orders/online-payments/search/get (begin_date/end_date required, RFC 3339,
  at most 30 days apart; answers {"data": [...], "paging": {...}});
- notifications: docs/checkout-api-orders/notifications (topic `order`, data.id = order id).

Each order wraps one sandbox `Payment` (its PIX transaction), so the control API's
approve/expire/refund/chargeback and the expiry sweep drive orders too; the order's status is
derived from that payment's.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import MPError
from .state import MPState, Payment
from .util import format_mp_date

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MONEY_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_REFERENCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DURATION_RE = re.compile(r"^P(?:(\d{1,4})D)?(?:T(?:(\d{1,5})H)?(?:(\d{1,6})M)?(?:(\d{1,7})S)?)?$")
# PIX expiry: between 30 minutes and 30 days (the same bounds as /v1/payments' PIX, see
# validation.py); 24 h when the request names none.
MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(days=30)
DEFAULT_EXPIRY = timedelta(hours=24)
_TOP_FIELDS = frozenset(
    {
        "type",
        "processing_mode",
        "external_reference",
        "total_amount",
        "description",
        "payer",
        "transactions",
        "marketplace",
        "marketplace_fee",
        "expiration_time",
        "capture_mode",
        "currency",
        "items",
        "config",
        "integration_data",
        "additional_info",
    }
)


class OrderError(MPError):
    """An Orders API error: {"errors": [{"code", "message", "details"}]}."""

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.error, "message": self.message, "details": []}]}


def order_error(status: int, code: str, message: str) -> OrderError:
    return OrderError(status, code, message)


@dataclass
class Order:
    """One online order holding one PIX payment transaction (`payment_id`)."""

    id: str
    transaction_id: str
    payment_id: int
    collector_id: int
    external_reference: str
    total_cents: int
    created: datetime
    expiration_time: str
    marketplace_fee_cents: int | None = None


def new_id(prefix: str) -> str:
    """A ULID-shaped id like Mercado Pago's (ORD01JQ4S4KY8HWQ6NA5PXB65B3D3)."""
    return prefix + "".join(secrets.choice(_CROCKFORD) for _ in range(26))


def money(cents: int) -> str:
    """Centavos -> the decimal string the Orders API uses ("19.90")."""
    return f"{Decimal(cents).scaleb(-2):.2f}"


def parse_money(value: object, field: str) -> int:
    """A decimal string in reais -> centavos; 400 property_type/property_value otherwise."""
    if not isinstance(value, str):
        raise order_error(400, "property_type", f"{field} must be a string")
    if not _MONEY_RE.match(value):
        raise order_error(400, "property_value", f"{field} is not a valid amount")
    try:
        return int(Decimal(value) * 100)
    except InvalidOperation:
        raise order_error(400, "property_value", f"{field} is not a valid amount") from None


def parse_duration(value: object) -> timedelta:
    """An ISO-8601 duration such as PT30M or P1DT2H; 400 property_value otherwise."""
    match = _DURATION_RE.match(value) if isinstance(value, str) and value != "P" else None
    if match is None or value in ("PT",):
        raise order_error(400, "property_value", "expiration_time must be an ISO 8601 duration")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _one_pix_payment(body: dict[str, Any], total: int) -> dict[str, Any]:
    transactions = body.get("transactions")
    payments = transactions.get("payments") if isinstance(transactions, dict) else None
    if not isinstance(payments, list) or not payments:
        raise order_error(400, "required_properties", "required property 'payments' is missing")
    if len(payments) > 1:
        found = len(payments)
        raise order_error(400, "maximum_items", f"maximum 1 items required, but found {found}")
    pay = payments[0]
    if not isinstance(pay, dict):
        raise order_error(400, "property_type", "transactions.payments[0] must be an object")
    method = pay.get("payment_method")
    if not isinstance(method, dict) or method.get("id") != "pix":
        raise order_error(400, "property_value", "this sandbox only supports payment_method pix")
    if method.get("type") != "bank_transfer":
        raise order_error(400, "property_value", "pix has payment_method.type bank_transfer")
    if parse_money(pay.get("amount"), "transactions.payments[0].amount") != total:
        raise order_error(
            400, "order_transactions_total_amount_mismatch", "payments must add up to total_amount"
        )
    return pay


def validate_order(body: Any, now: datetime, collector_id: int) -> dict[str, Any]:
    """Checked fields of POST /v1/orders (PIX, automatic); raises OrderError(400)."""
    if not isinstance(body, dict):
        raise order_error(400, "json_syntax_error", "the body must be a JSON object")
    unknown = sorted(set(body) - _TOP_FIELDS)
    if unknown:
        raise order_error(400, "unsupported_properties", f"unsupported properties: {unknown}")
    for name in ("type", "processing_mode", "external_reference", "total_amount", "payer"):
        if body.get(name) in (None, ""):
            raise order_error(400, "required_properties", f"required property '{name}' is missing")
    if body["type"] != "online":
        raise order_error(400, "property_value", "type must be online")
    if body["processing_mode"] != "automatic":
        raise order_error(400, "property_value", "this sandbox only processes automatic orders")
    ref = body["external_reference"]
    if not isinstance(ref, str) or not _REFERENCE_RE.match(ref):
        raise order_error(400, "property_value", "external_reference: at most 64 of [A-Za-z0-9_-]")
    total = parse_money(body["total_amount"], "total_amount")
    if total <= 0:
        raise order_error(400, "invalid_total_amount", "Order total amount cannot be zero")
    payer = body["payer"]
    if not isinstance(payer, dict) or not isinstance(payer.get("email"), str):
        raise order_error(400, "required_properties", "required property 'email' is missing")
    pay = _one_pix_payment(body, total)
    fee = None
    if body.get("marketplace_fee") is not None:
        fee = parse_money(body["marketplace_fee"], "marketplace_fee")
        if fee > total:
            raise order_error(400, "property_value", "marketplace_fee exceeds total_amount")
    raw_expiry = pay.get("expiration_time") or body.get("expiration_time")
    ttl = DEFAULT_EXPIRY if raw_expiry is None else parse_duration(raw_expiry)
    if not (MIN_EXPIRY <= ttl <= MAX_EXPIRY):
        raise order_error(400, "property_value", "pix expiration_time: 30 minutes to 30 days")
    description = body.get("description")
    return {
        "collector_id": collector_id,
        "amount_cents": total,
        "payer": payer,
        "description": description[:600] if isinstance(description, str) else None,
        "external_reference": ref,
        "metadata": {},
        "notification_url": None,  # the Orders API notifies the panel's URL only
        "expires": now + ttl,
        "expiration_time": raw_expiry or "PT24H",
        "marketplace_fee_cents": fee,
    }


def order_status(payment: Payment) -> tuple[str, str]:
    """(status, status_detail) of an order from its PIX payment's state."""
    status = payment.status
    if status == "pending":
        return "action_required", "waiting_transfer"
    if status == "approved":
        return "processed", "partially_refunded" if payment.refunded_cents else "accredited"
    if status == "refunded":
        return "refunded", "refunded"
    if status == "cancelled":
        expired = payment.status_detail == "expired"
        return ("expired", "expired") if expired else ("canceled", "canceled")
    if status == "rejected":
        return "failed", "failed"
    if status == "charged_back":  # sandbox choice: the order docs list no chargeback status
        return "charged_back", "charged_back"
    return "processing", "in_process"


def order_json(order: Order, state: MPState) -> dict[str, Any]:
    """The order object as GET /v1/orders/{id} returns it."""
    payment = state.payments[order.payment_id]
    offset = state.config.utc_offset_hours
    status, detail = order_status(payment)
    paid = payment.approved is not None
    refunds = [
        {
            "id": f"REF{r.id:026d}",
            "transaction_id": order.transaction_id,
            "amount": money(r.amount_cents),
            "status": "processed",
        }
        for r in payment.refunds
    ]
    body: dict[str, Any] = {
        "id": order.id,
        "type": "online",
        "processing_mode": "automatic",
        "external_reference": order.external_reference,
        "description": payment.description,
        "country_code": "BRA",
        "user_id": str(order.collector_id),
        "status": status,
        "status_detail": detail,
        "currency": "BRL",
        "total_amount": money(order.total_cents),
        "total_paid_amount": money(order.total_cents if paid else 0),
        "created_date": format_mp_date(order.created, offset),
        "last_updated_date": format_mp_date(payment.updated or order.created, offset),
        "payer": {"email": payment.payer.get("email")},
        "transactions": {
            "payments": [
                {
                    "id": order.transaction_id,
                    "amount": money(order.total_cents),
                    "paid_amount": money(order.total_cents if paid else 0),
                    "refunded_amount": money(payment.refunded_cents),
                    "status": status,
                    "status_detail": detail,
                    "expiration_time": order.expiration_time,
                    "date_of_expiration": format_mp_date(payment.expires, offset),
                    "payment_method": {
                        "id": "pix",
                        "type": "bank_transfer",
                        "ticket_url": payment.ticket_url,
                        "qr_code": payment.qr_code,
                        "qr_code_base64": payment.qr_code_base64,
                    },
                }
            ],
            "refunds": refunds,
        },
    }
    if order.marketplace_fee_cents is not None:
        body["marketplace_fee"] = money(order.marketplace_fee_cents)
    return body


def order_of(state: MPState, order_id: str, collector_id: int | None = None) -> Order:
    """An order visible to `collector_id` (any if None), after lazy expiry; 404 otherwise."""
    state.expire_due()
    order: Order | None = state.orders.get(order_id)
    if order is None or (collector_id is not None and order.collector_id != collector_id):
        raise order_error(404, "order_not_found", f"order {order_id} not found")
    return order


def payment_of(state: MPState, ident: str) -> Payment:
    """The sandbox payment behind a payment id or an order id (the control API takes both)."""
    if ident.isdigit():
        return state.get(int(ident))
    return state.get(order_of(state, ident).payment_id)


def notification(state: MPState, order_id: str) -> tuple[str, dict[str, Any]]:
    """(action, body) of an `order` notification about `order_id` now."""
    order: Order = state.orders[order_id]
    status, detail = order_status(state.payments[order.payment_id])
    action = "order.refunded" if detail == "partially_refunded" else f"order.{status}"
    body = {
        "action": action,
        "api_version": "v1",
        "data": {
            "id": order.id,
            "external_reference": order.external_reference,
            "status": status,
            "status_detail": detail,
            "total_amount": money(order.total_cents),
        },
        "date_created": format_mp_date(state.now(), state.config.utc_offset_hours),
        "id": state.next_notification_id(),
        "live_mode": False,
        "type": "order",
        "user_id": order.collector_id,
    }
    return action, body

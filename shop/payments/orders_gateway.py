"""Mercado Pago Orders API (`/v1/orders`) for PIX: Mercado Pago's current API for online
payments, where its new features are built (the Payments API is `shop.payments.mercadopago`).

Docs (developers/en/...): create reference/orders/online-payments/create/post, PIX
docs/checkout-api-orders/payment-integration/pix, get reference/orders/online-payments/get/get,
search reference/orders/online-payments/search/get, refund reference/orders/online-payments/
refund/post, cancel reference/orders/online-payments/cancel/post, statuses docs/
checkout-api-orders/payment-management/status/order-status, the field-by-field map from
/v1/payments docs/checkout-api-orders/migrate-payments-to-orders.

One order holds one PIX payment transaction; the order id is our `provider_payment_id`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from shop.cents import cents_to_reais, reais_to_cents
from shop.errors import PaymentProviderError
from shop.payments.gateway import PixCharge, ProviderPayment
from shop.payments.mp_http import MercadoPagoHttp, parse_date
from shop.states import PaymentStatus

P = PaymentStatus

# The order's (status, status_detail) -> the payment status the shop acts on. The order-status
# table (docs above): created/created, action_required/waiting_payment|waiting_transfer (a PIX
# waiting for the buyer), processing/in_process, processed/accredited, processed/
# partially_refunded (still approved: the refunded part is in the amounts), processed/refunded
# and refunded/refunded (fully refunded), canceled/canceled, expired/expired, failed/*.
# A detail entry wins over its status entry.
STATUS_BY_DETAIL: dict[str, PaymentStatus] = {
    "refunded": P.REFUNDED,
    "charged_back": P.CHARGED_BACK,
}
STATUS_BY_ORDER_STATUS: dict[str, PaymentStatus] = {
    "created": P.PENDING,
    "action_required": P.PENDING,
    "processing": P.IN_PROCESS,
    "processed": P.APPROVED,
    "refunded": P.REFUNDED,
    "charged_back": P.CHARGED_BACK,
    "canceled": P.CANCELLED,
    "cancelled": P.CANCELLED,
    "expired": P.CANCELLED,
    "failed": P.REJECTED,
}
SEARCH_WINDOW = timedelta(days=30)  # the search's begin_date..end_date may span 720 h at most


def order_status(status: str, detail: str) -> str:
    """The `PaymentStatus` value for an order's status pair ('' when we do not model it)."""
    found = STATUS_BY_DETAIL.get(detail) or STATUS_BY_ORDER_STATUS.get(status)
    return str(found) if found is not None else ""


def iso_duration(seconds: float) -> str:
    """Whole minutes as an ISO-8601 duration, e.g. 5400 s -> 'PT1H30M' (floored, so a
    retried request computed a few seconds later usually sends the same body)."""
    minutes = max(1, math.floor(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")


def _money(cents: int) -> str:
    return f"{cents_to_reais(cents):.2f}"


def _pix_transaction(body: dict[str, Any]) -> dict[str, Any]:
    payments = (body.get("transactions") or {}).get("payments") or []
    first = payments[0] if payments and isinstance(payments[0], dict) else {}
    return first


def _refunded_cents(body: dict[str, Any]) -> int:
    tx = _pix_transaction(body)
    if tx.get("refunded_amount") not in (None, ""):
        return reais_to_cents(tx["refunded_amount"])
    refunds = (body.get("transactions") or {}).get("refunds") or []
    return sum(
        reais_to_cents(r.get("amount") or 0)
        for r in refunds
        if isinstance(r, dict) and r.get("status") != "failed"
    )


def parse_order(body: dict[str, Any]) -> ProviderPayment:
    """A MP order object -> ProviderPayment; the QR image stays out of `raw` (it is stored)."""
    tx = _pix_transaction(body)
    method = tx.get("payment_method") or {}
    status, detail = str(body.get("status") or ""), str(body.get("status_detail") or "")
    ref = body.get("external_reference")
    mapped = order_status(status, detail)
    raw = {k: v for k, v in body.items() if k != "transactions"}
    raw["transactions"] = _without_qr_image(body.get("transactions") or {})
    return ProviderPayment(
        id=str(body["id"]),
        status=mapped,
        status_detail=detail or status,
        amount_cents=reais_to_cents(body.get("total_amount") or 0),
        refunded_cents=_refunded_cents(body),
        currency=str(body.get("currency") or ""),
        external_reference=str(ref) if ref not in (None, "") else None,
        qr_code=method.get("qr_code") or "",
        qr_code_base64=method.get("qr_code_base64") or "",
        ticket_url=method.get("ticket_url") or "",
        expires_at=parse_date(tx.get("date_of_expiration")),
        approved_at=parse_date(body.get("last_updated_date")) if mapped == P.APPROVED else None,
        raw=raw,
    )


def _without_qr_image(transactions: dict[str, Any]) -> dict[str, Any]:
    out = dict(transactions)
    out["payments"] = [
        {
            **p,
            "payment_method": {
                k: v for k, v in (p.get("payment_method") or {}).items() if k != "qr_code_base64"
            },
        }
        for p in transactions.get("payments") or []
        if isinstance(p, dict)
    ]
    return out


class MercadoPagoOrdersGateway(MercadoPagoHttp):
    """`PaymentGateway` over the Orders API; same constructor as `MercadoPagoGateway`."""

    def order_body(self, charge: PixCharge, now: datetime | None = None) -> dict[str, Any]:
        """The create request: an online order in automatic mode with one PIX payment."""
        amount = _money(charge.amount_cents)
        left = (charge.expires_at - (now or datetime.now(UTC))).total_seconds()
        body: dict[str, Any] = {
            "type": "online",
            "processing_mode": "automatic",
            "external_reference": charge.payment_id,
            "total_amount": amount,
            "description": charge.description[:150],
            "payer": {"email": charge.payer_email},
            "transactions": {
                "payments": [
                    {
                        "amount": amount,
                        "payment_method": {"id": "pix", "type": "bank_transfer"},
                        "expiration_time": iso_duration(left),
                    }
                ]
            },
        }
        if charge.marketplace_fee_cents is not None:  # a connected seller's: the platform's cut
            body["marketplace_fee"] = _money(charge.marketplace_fee_cents)
        return body

    async def create_pix(self, charge: PixCharge) -> ProviderPayment:
        try:
            data = await self._request(
                "POST",
                "/v1/orders",
                json=self.order_body(charge),
                idempotency_key=charge.payment_id,
            )
        except PaymentProviderError as exc:
            # Our payment id is the idempotency key; a later retry computes a shorter expiry,
            # so its body differs and Mercado Pago refuses the reused key: the order exists.
            if exc.status != 409:
                raise
            found = await self.find_by_reference(charge.payment_id)
            if not found:
                raise
            return found[0]
        return parse_order(data)

    async def _order(self, order_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._get_found(f"/v1/orders/{order_id}")
        return data

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        return parse_order(await self._order(provider_id))

    async def find_by_reference(self, external_reference: str) -> list[ProviderPayment]:
        end = datetime.now(UTC) + timedelta(days=1)  # only begin_date may not be in the future
        data = await self._request(
            "GET",
            "/v1/orders",
            params={
                "begin_date": (end - SEARCH_WINDOW).isoformat(timespec="seconds"),
                "end_date": end.isoformat(timespec="seconds"),
                "external_reference": external_reference,
            },
        )
        orders = [parse_order(o) for o in data.get("data") or [] if isinstance(o, dict)]
        created = {o.id: str(o.raw.get("created_date") or "") for o in orders}
        return sorted(orders, key=lambda o: created[o.id], reverse=True)

    async def cancel(self, provider_id: str) -> ProviderPayment:
        data = await self._request(
            "POST", f"/v1/orders/{provider_id}/cancel", idempotency_key=f"cancel-{provider_id}"
        )
        return parse_order(data)

    async def refund(
        self, provider_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> dict[str, Any]:
        """Total: no body. Partial: the PIX transaction's id and the amount (read first)."""
        body: dict[str, Any] | None = None
        if amount_cents is not None:
            tx = _pix_transaction(await self._order(provider_id))
            body = {
                "transactions": [{"id": str(tx.get("id") or ""), "amount": _money(amount_cents)}]
            }
        data: dict[str, Any] = await self._request(
            "POST", f"/v1/orders/{provider_id}/refund", json=body, idempotency_key=idempotency_key
        )
        return data

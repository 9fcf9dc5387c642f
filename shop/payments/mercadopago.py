"""Mercado Pago Payments API (PIX), the legacy path (the Orders API is
`shop.payments.orders_gateway`; HTTP, errors and retries are `shop.payments.mp_http`).

POSTs are safe to retry because each carries `X-Idempotency-Key` = our payment id.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from shop.cents import cents_to_reais, reais_to_cents
from shop.payments.gateway import PixCharge, ProviderPayment
from shop.payments.mp_http import WEBHOOK_PATH, MercadoPagoHttp, parse_date, shared_ssl_context

__all__ = ["WEBHOOK_PATH", "MercadoPagoGateway", "format_mp_date", "shared_ssl_context"]

BRT = timezone(timedelta(hours=-3))


def format_mp_date(moment: datetime) -> str:
    """MP's `yyyy-MM-dd'T'HH:mm:ss.SSSz`, e.g. 2026-05-30T23:59:59.000-03:00."""
    return moment.astimezone(BRT).isoformat(timespec="milliseconds")


def parse_payment(body: dict[str, Any]) -> ProviderPayment:
    """A MP payment object -> ProviderPayment (amounts via Decimal, never float arithmetic)."""
    tx = (body.get("point_of_interaction") or {}).get("transaction_data") or {}
    ref = body.get("external_reference")
    return ProviderPayment(
        id=str(body["id"]),
        status=str(body.get("status") or ""),
        status_detail=str(body.get("status_detail") or ""),
        amount_cents=reais_to_cents(body.get("transaction_amount", 0)),
        refunded_cents=reais_to_cents(body.get("transaction_amount_refunded") or 0),
        currency=str(body.get("currency_id") or ""),
        external_reference=str(ref) if ref not in (None, "") else None,
        qr_code=tx.get("qr_code") or "",
        qr_code_base64=tx.get("qr_code_base64") or "",
        ticket_url=tx.get("ticket_url") or "",
        expires_at=parse_date(body.get("date_of_expiration")),
        approved_at=parse_date(body.get("date_approved")),
        raw=body,
    )


class MercadoPagoGateway(MercadoPagoHttp):
    """`PaymentGateway` for Mercado Pago's Payments API (`/v1/payments`)."""

    async def create_pix(self, charge: PixCharge) -> ProviderPayment:
        body = {
            "transaction_amount": float(cents_to_reais(charge.amount_cents)),
            "payment_method_id": "pix",
            "description": charge.description[:600],
            "external_reference": charge.payment_id,
            "notification_url": self.notification_url,
            "date_of_expiration": format_mp_date(charge.expires_at),
            "payer": {"email": charge.payer_email},
            "metadata": charge.metadata,
        }
        if charge.marketplace_fee_cents is not None:
            # Split payments (marketplace), Checkout API: "fill the application_fee parameter
            # with the amount to be charged for each payment created in the /payments API"
            # (mercadopago.com.br/developers/en/docs/split-payments/integration-configuration/
            # integrate-marketplace).
            body["application_fee"] = float(cents_to_reais(charge.marketplace_fee_cents))
        data = await self._request(
            "POST", "/v1/payments", json=body, idempotency_key=charge.payment_id
        )
        return parse_payment(data)

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        return parse_payment(await self._get_found(f"/v1/payments/{provider_id}"))

    async def find_by_reference(self, external_reference: str) -> list[ProviderPayment]:
        data = await self._request(
            "GET",
            "/v1/payments/search",
            params={
                "external_reference": external_reference,
                "sort": "date_created",
                "criteria": "desc",
                "limit": 30,
            },
        )
        return [parse_payment(item) for item in data.get("results", [])]

    async def cancel(self, provider_id: str) -> ProviderPayment:
        data = await self._request(
            "PUT", f"/v1/payments/{provider_id}", json={"status": "cancelled"}
        )
        return parse_payment(data)

    async def refund(
        self, provider_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> dict[str, Any]:
        body = {} if amount_cents is None else {"amount": float(cents_to_reais(amount_cents))}
        data: dict[str, Any] = await self._request(
            "POST",
            f"/v1/payments/{provider_id}/refunds",
            json=body,
            idempotency_key=idempotency_key,
        )
        return data

"""Mercado Pago Payments API (PIX) over one shared httpx.AsyncClient.

Retries 429/423/5xx and transport errors with exponential backoff, honouring `Retry-After`;
POSTs are safe to retry because each carries `X-Idempotency-Key` = our payment id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.settings import Settings
from shop.cents import cents_to_reais, reais_to_cents
from shop.errors import PaymentNotFound, PaymentProviderError, PaymentProviderUnavailable
from shop.payments.gateway import PixCharge, ProviderPayment

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/mercadopago"
RETRYABLE = frozenset({423, 429, 500, 502, 503, 504})
BRT = timezone(timedelta(hours=-3))


def format_mp_date(moment: datetime) -> str:
    """MP's `yyyy-MM-dd'T'HH:mm:ss.SSSz`, e.g. 2026-05-30T23:59:59.000-03:00."""
    return moment.astimezone(BRT).isoformat(timespec="milliseconds")


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


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
        expires_at=_parse_date(body.get("date_of_expiration")),
        approved_at=_parse_date(body.get("date_approved")),
        raw=body,
    )


def _retry_after(response: httpx.Response) -> float | None:
    raw: str | None = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


def _provider_error(response: httpx.Response) -> PaymentProviderError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.reason_phrase or "error")
    error = str(body.get("error") or "")
    cause = body.get("cause") if isinstance(body.get("cause"), list) else []
    cls = PaymentProviderUnavailable if response.status_code in RETRYABLE else PaymentProviderError
    return cls(response.status_code, message, error, cause)


_SSL_CONTEXT: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process. Loading the CA bundle costs ~4 MB, so the worker
    zygote builds it before forking and every bot worker shares those pages."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


class MercadoPagoGateway:
    """`PaymentGateway` for Mercado Pago; one instance (one connection pool) per process."""

    def __init__(
        self,
        api_base: str,
        access_token: str,
        notification_url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.25,
        max_backoff: float = 10.0,
    ) -> None:
        self.notification_url = notification_url
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self._http = httpx.AsyncClient(
            base_url=api_base.rstrip("/"),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/json",
                "User-Agent": "vitrine/0.1",
            },
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            verify=shared_ssl_context(),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> MercadoPagoGateway:
        """Built from MERCADOPAGO_API_BASE, MERCADOPAGO_ACCESS_TOKEN and PUBLIC_BASE_URL."""
        url = f"{settings.public_base_url}{WEBHOOK_PATH}?source_news=webhooks"
        return cls(settings.mercadopago_api_base, settings.mercadopago_access_token, url, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response) if response is not None else None
        if hinted is not None:
            return min(hinted, self.max_backoff)
        backoff: float = self.backoff_base * (2**attempt)
        return min(backoff * (0.5 + random.random()), self.max_backoff)  # noqa: S311

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers = {"X-Idempotency-Key": idempotency_key} if idempotency_key else None
        last: Exception | None = None
        for attempt in range(self.max_attempts):
            response = None
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                last = PaymentProviderUnavailable(
                    0, f"{type(exc).__name__}: {exc}", "transport_error"
                )
            else:
                if response.status_code < 400:
                    return response.json()
                last = _provider_error(response)
                if response.status_code not in RETRYABLE:
                    raise last
            if attempt + 1 < self.max_attempts:
                delay = self._delay(attempt, response)
                log.warning(
                    "mercadopago %s %s failed (%s); retry in %.2fs", method, path, last, delay
                )
                await asyncio.sleep(delay)
        assert last is not None
        raise last

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
        data = await self._request(
            "POST", "/v1/payments", json=body, idempotency_key=charge.payment_id
        )
        return parse_payment(data)

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        try:
            data = await self._request("GET", f"/v1/payments/{provider_id}")
        except PaymentProviderError as exc:
            if exc.status == 404:
                raise PaymentNotFound(f"Mercado Pago: {exc.provider_message}") from exc
            raise
        return parse_payment(data)

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

"""Mercado Pago over HTTP: one shared httpx.AsyncClient per gateway, errors and retries.

Shared by the Payments API gateway (`shop.payments.mercadopago`) and the Orders API gateway
(`shop.payments.orders_gateway`). Retries 429/423/5xx and transport errors with exponential
backoff, honouring `Retry-After`; POSTs are safe to retry because each carries
`X-Idempotency-Key`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx

from core.settings import Settings
from shop.errors import PaymentNotFound, PaymentProviderError, PaymentProviderUnavailable

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/mercadopago"
RETRYABLE = frozenset({423, 429, 500, 502, 503, 504})


def parse_date(value: Any) -> datetime | None:
    """An ISO-8601 date from Mercado Pago, or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


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


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is not one (an error page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _provider_error(response: httpx.Response) -> PaymentProviderError:
    body = json_object(response)
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict):  # the Orders API: {"errors": [{"code", "message", "details"}]}
        body = {"message": first.get("message"), "error": first.get("code")}
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


class MercadoPagoHttp:
    """One connection pool to Mercado Pago with retries; the gateways of both APIs build on it
    (one instance per process, or per connected seller's token)."""

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
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """Built from MERCADOPAGO_API_BASE, MERCADOPAGO_ACCESS_TOKEN and PUBLIC_BASE_URL."""
        url = f"{settings.public_base_url}{WEBHOOK_PATH}?source_news=webhooks"
        kwargs.setdefault("access_token", settings.mercadopago_access_token)  # or a seller's
        kwargs.setdefault("notification_url", url)
        return cls(settings.mercadopago_api_base, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_found(self, path: str) -> Any:
        """GET one resource; Mercado Pago's 404 becomes `PaymentNotFound`."""
        try:
            return await self._request("GET", path)
        except PaymentProviderError as exc:
            if exc.status == 404:
                raise PaymentNotFound(f"Mercado Pago: {exc.provider_message}") from exc
            raise

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
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One call with retries; `content` (with its `headers`) is sent as is instead of
        `json` when the exact bytes matter (a signed body)."""
        headers = dict(headers or {})
        if idempotency_key:
            headers["X-Idempotency-Key"] = idempotency_key
        last: Exception | None = None
        for attempt in range(self.max_attempts):
            response = None
            try:
                response = await self._http.request(
                    method, path, json=json, content=content, params=params, headers=headers
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

"""Configuration of the Mercado Pago stand-in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class MercadoPagoConfig:
    """Settings for one fake Mercado Pago account (one collector)."""

    webhook_secret: str = "sandbox-webhook-secret"  # noqa: S105
    # None = accept any non-empty Bearer token (a token is still required).
    access_tokens: set[str] | None = None
    # Delays (seconds) before retry 1, 2, ...: attempts = 1 + len(delays).
    webhook_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    webhook_timeout: float = 22.0
    # BR Code merchant data.
    pix_key: str = "7d9f0335-8dcc-4054-9bf9-0dbd61d36906"
    merchant_name: str = "VITRINE SANDBOX"
    merchant_city: str = "SAO PAULO"
    # Collector / webhook user id.
    user_id: int = 1234567890
    first_payment_id: int = 1320000001
    # MP PIX fee, in basis points of the amount (0.99% = 99).
    fee_basis_points: int = 99
    # UTC offset used to render dates (MP renders in -04:00; Brazil is -03:00).
    utc_offset_hours: int = -3
    # How often the background sweep expires overdue pending payments.
    sweep_interval: float = 1.0
    # MP documents X-Idempotency-Key as mandatory on POST /v1/payments.
    require_idempotency_key: bool = True
    # Where to notify when a payment has no notification_url (MP's "panel" URL).
    default_notification_url: str | None = None
    # Base URL put in ticket_url; None = derived from the request's Host.
    public_url: str | None = None

"""What the shop needs from a payment provider, and the provider's view of one payment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PixCharge:
    """What we ask for: our payment id doubles as external reference and idempotency key."""

    payment_id: str
    amount_cents: int
    description: str
    payer_email: str
    expires_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    # A connected seller's charge (created with their token): the platform's fee, which
    # Mercado Pago moves to the platform's account (`shop.payments.connected_gateway`).
    marketplace_fee_cents: int | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """One payment as the provider reports it right now (amounts in centavos)."""

    id: str
    status: str
    status_detail: str
    amount_cents: int
    refunded_cents: int
    currency: str
    external_reference: str | None
    qr_code: str = ""
    qr_code_base64: str = ""
    ticket_url: str = ""
    expires_at: datetime | None = None
    approved_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class PaymentGateway(Protocol):
    """A PIX provider. Implementations raise `shop.errors.PaymentProviderError` subclasses."""

    async def create_pix(self, charge: PixCharge) -> ProviderPayment:
        """Create (or, for a retried id, return the same) PIX charge."""
        ...

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        """The payment now; `PaymentNotFound` if the provider does not know it."""
        ...

    async def find_by_reference(self, external_reference: str) -> list[ProviderPayment]:
        """Payments created with this external reference, newest first."""
        ...

    async def refund(
        self, provider_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> dict[str, Any]:
        """Refund all (or `amount_cents`) of an approved payment."""
        ...

    async def cancel(self, provider_id: str) -> ProviderPayment:
        """Cancel a pending charge (its PIX code can no longer be paid)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

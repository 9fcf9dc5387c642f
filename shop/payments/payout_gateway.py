"""What automatic payouts need from a money-out provider, and its view of one transfer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class PayoutOutcome(StrEnum):
    """What a provider's answer means for the withdrawal."""

    PAID = "paid"  # the money reached the destination: complete the withdrawal
    FAILED = "failed"  # it never will: fail the withdrawal, the money goes back
    PENDING = "pending"  # not final yet: ask again later


@dataclass(frozen=True)
class PayoutRequest:
    """One PIX out: `idempotency_key` is the same for every send of this payout."""

    idempotency_key: str
    external_reference: str
    amount_cents: int
    pix_key_type: str  # shop.pix_keys.PixKeyType
    pix_key: str


@dataclass(frozen=True)
class ProviderPayout:
    """One transfer as the provider reports it now."""

    id: str
    status: str
    status_detail: str
    outcome: PayoutOutcome
    amount_cents: int | None
    e2e_id: str | None  # the PIX end-to-end id, once the transfer settled
    external_reference: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class PayoutGateway(Protocol):
    """A money-out provider. Implementations raise `shop.errors.PaymentProviderError`
    (a refusal: nothing was sent) or its subclass `PaymentProviderUnavailable` (no answer:
    the transfer may or may not exist, so the same request is sent again later)."""

    async def send_pix(self, request: PayoutRequest) -> ProviderPayout:
        """Create the transfer, or, for a key already used, return the one it created."""
        ...

    async def get_payout(self, provider_id: str) -> ProviderPayout:
        """The transfer now (`PaymentNotFound` if the provider does not know it)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

"""The Mercado Pago gateway a process uses: new charges through the API `MERCADOPAGO_API`
names, everything else through the API that created the payment (told by its id,
`shop.payments.mp_ids`), so switching the setting never strands a payment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.settings import Settings
from shop.payments.gateway import PaymentGateway, PixCharge, ProviderPayment
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.mp_ids import APIS, ORDERS, PAYMENTS, api_of
from shop.payments.orders_gateway import MercadoPagoOrdersGateway


class MercadoPagoApis:
    """`PaymentGateway` over both Mercado Pago APIs; `create_with` picks the one for new charges."""

    def __init__(self, build: Callable[[str], PaymentGateway], create_with: str = PAYMENTS) -> None:
        if create_with not in APIS:
            raise ValueError(f"unknown Mercado Pago API {create_with!r}")
        self._build = build
        self._apis: dict[str, PaymentGateway] = {}  # built on first use: one pool per API used
        self.create_with = create_with

    def api(self, name: str) -> PaymentGateway:
        """The gateway of one API (`payments` or `orders`)."""
        if name not in self._apis:
            self._apis[name] = self._build(name)
        return self._apis[name]

    def _for(self, provider_id: str) -> PaymentGateway:
        return self.api(api_of(provider_id))

    async def create_pix(self, charge: PixCharge) -> ProviderPayment:
        return await self.api(self.create_with).create_pix(charge)

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        return await self._for(provider_id).get_payment(provider_id)

    async def find_by_reference(self, external_reference: str) -> list[ProviderPayment]:
        """The configured API first; the other one too when it has nothing (the charge may
        have been created before the setting changed)."""
        other = ORDERS if self.create_with == PAYMENTS else PAYMENTS
        found = await self.api(self.create_with).find_by_reference(external_reference)
        return found or await self.api(other).find_by_reference(external_reference)

    async def refund(
        self, provider_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> dict[str, Any]:
        return await self._for(provider_id).refund(provider_id, idempotency_key, amount_cents)

    async def cancel(self, provider_id: str) -> ProviderPayment:
        return await self._for(provider_id).cancel(provider_id)

    async def aclose(self) -> None:
        apis, self._apis = list(self._apis.values()), {}
        for api in apis:
            await api.aclose()


def gateway_from_settings(
    settings: Settings, *, api: str | None = None, **kwargs: Any
) -> MercadoPagoApis:
    """The process's gateway (MERCADOPAGO_API chooses new charges' API; `api` overrides it).
    `kwargs` go to both APIs' constructors (e.g. a connected seller's `access_token=`)."""

    def build(name: str) -> PaymentGateway:
        cls = MercadoPagoOrdersGateway if name == ORDERS else MercadoPagoGateway
        return cls.from_settings(settings, **kwargs)

    return MercadoPagoApis(build, api or settings.mercadopago_api)

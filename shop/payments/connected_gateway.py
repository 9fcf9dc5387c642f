"""Which Mercado Pago account a charge lives in: the platform's, or a connected seller's.

`ConnectedRouter` is the process's `PaymentGateway` (`PaymentServices.from_settings` wraps
the platform gateway in it). A new charge of a store in connected mode is created with the
seller's token and the platform fee as marketplace fee, and remembered (`ConnectedCharge`,
written before the request leaves, so a lost answer is still looked up in the right
account); reading, cancelling and refunding that payment later use the same seller's token.
Everything else goes to the platform gateway unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import Settings
from core.vault import TokenVault
from shop.cents import fee_cents
from shop.errors import ShopError
from shop.models import ConnectedCharge, MPConnection, Payment
from shop.payments.connected import access_token, active_connection, refresh_due
from shop.payments.gateway import PaymentGateway, PixCharge, ProviderPayment
from shop.payments.gateways import gateway_from_settings
from shop.payments.mp_oauth import MercadoPagoOAuth

# Builds a gateway with a seller's access token (`gateway_from_settings(settings,
# access_token=…)`): one short-lived connection pool per operation.
SellerGatewayFactory = Callable[[str], PaymentGateway]


class SellerNotConnected(ShopError):
    """A connected store's charge, but its Mercado Pago connection is gone (disconnected)."""

    code = "mp_not_connected"
    message_key = "mpconnect.error.not_connected"


class ConnectedRouter:
    """`PaymentGateway` that sends each payment to the account it lives in."""

    def __init__(
        self,
        platform: PaymentGateway,
        vault: TokenVault,
        seller_gateway: SellerGatewayFactory,
        fee_bps: int,
        oauth: MercadoPagoOAuth | None = None,
        refresh_before: timedelta = timedelta(days=30),
    ) -> None:
        self.platform = platform
        self.vault = vault
        self.seller_gateway = seller_gateway
        self.fee_bps = fee_bps
        self.oauth = oauth
        self.refresh_before = refresh_before

    @classmethod
    def from_settings(cls, settings: Settings, platform: PaymentGateway) -> ConnectedRouter:
        """The platform gateway, plus connected sellers' accounts (MERCADOPAGO_CLIENT_*)."""
        cfg = settings.mp_connect

        def seller(token: str) -> PaymentGateway:
            return gateway_from_settings(settings, access_token=token)

        return cls(
            platform,
            TokenVault(settings.token_encryption_keys),
            seller,
            settings.platform_fee_bps,
            MercadoPagoOAuth(cfg, settings.mercadopago_api_base) if cfg.enabled else None,
            timedelta(days=cfg.refresh_before_days),
        )

    @asynccontextmanager
    async def _seller(self, charge: ConnectedCharge) -> AsyncIterator[PaymentGateway]:
        row = await MPConnection.get_or_none(
            tenant_id=charge.tenant_id, mp_user_id=charge.mp_user_id, disconnected_at__isnull=True
        )
        if row is None:
            raise SellerNotConnected(
                f"store {charge.tenant_id}: Mercado Pago account {charge.mp_user_id} "
                "is no longer connected"
            )
        gateway = self.seller_gateway(access_token(self.vault, row).reveal())
        try:
            yield gateway
        finally:
            await gateway.aclose()

    async def _charge_of(self, provider_id: str) -> ConnectedCharge | None:
        return await ConnectedCharge.get_or_none(payment__provider_payment_id=provider_id)

    async def create_pix(self, charge: PixCharge) -> ProviderPayment:
        record = await ConnectedCharge.get_or_none(payment_id=charge.payment_id)
        if record is None:
            payment = await Payment.get_or_none(id=charge.payment_id).only("id", "tenant_id")
            row = await active_connection(payment.tenant_id) if payment is not None else None
            if row is None:
                return await self.platform.create_pix(charge)
            record = await ConnectedCharge.create(
                payment_id=charge.payment_id,
                tenant_id=row.tenant_id,
                mp_user_id=row.mp_user_id,
                amount_cents=charge.amount_cents,
                fee_cents=fee_cents(charge.amount_cents, self.fee_bps),
            )
        fee = int(record.fee_cents)
        async with self._seller(record) as seller:
            return await seller.create_pix(dataclasses.replace(charge, marketplace_fee_cents=fee))

    async def get_payment(self, provider_id: str) -> ProviderPayment:
        record = await self._charge_of(provider_id)
        if record is None:
            return await self.platform.get_payment(provider_id)
        async with self._seller(record) as seller:
            return await seller.get_payment(provider_id)

    async def find_by_reference(self, external_reference: str) -> list[ProviderPayment]:
        record = await ConnectedCharge.get_or_none(payment_id=external_reference)
        if record is None:
            return await self.platform.find_by_reference(external_reference)
        async with self._seller(record) as seller:
            return await seller.find_by_reference(external_reference)

    async def refund(
        self, provider_id: str, idempotency_key: str, amount_cents: int | None = None
    ) -> dict[str, Any]:
        record = await self._charge_of(provider_id)
        if record is None:
            return await self.platform.refund(provider_id, idempotency_key, amount_cents)
        async with self._seller(record) as seller:
            return await seller.refund(provider_id, idempotency_key, amount_cents)

    async def cancel(self, provider_id: str) -> ProviderPayment:
        record = await self._charge_of(provider_id)
        if record is None:
            return await self.platform.cancel(provider_id)
        async with self._seller(record) as seller:
            return await seller.cancel(provider_id)

    async def aclose(self) -> None:
        await self.platform.aclose()


async def is_connected_payment(payment_id: object, using_db: Any = None) -> bool:
    """True when the payment was charged on a seller's own account (no ledger, no balance)."""
    return await ConnectedCharge.filter(payment_id=payment_id).using_db(using_db).exists()


async def record_connected_sale(payment_id: object, using_db: Any = None) -> ConnectedCharge | None:
    """In the sync's transaction, instead of a ledger sale: mark a connected charge sold (once).
    None when the payment is the platform's (the ledger books it)."""
    record = await ConnectedCharge.filter(payment_id=payment_id).using_db(using_db).first()
    if record is None:
        return None
    if record.sold_at is None:
        record.sold_at = datetime.now(UTC)
        await record.save(using_db=using_db, update_fields=["sold_at"])
    return record


async def refresh_connected_tokens(gateway: PaymentGateway, now: datetime | None = None) -> int:
    """The reconciler's pass: renew sellers' tokens before they expire (0 when this process
    has no OAuth client configured)."""
    if not isinstance(gateway, ConnectedRouter) or gateway.oauth is None:
        return 0
    return await refresh_due(gateway.oauth, gateway.vault, gateway.refresh_before, now)

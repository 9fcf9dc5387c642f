"""Storefront fixtures: the sandbox (Discord + Mercado Pago) in-process, a real orchestrator
running real workers (the `Fleet` harness), and a store whose bot sells in a sandbox guild."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from sandbox.discord.client import Buyer, DiscordSandbox, GuildInfo
from sandbox.server import RunningSandbox
from tests.orchestrator.harness import Fleet

STOREFRONT_ENV = {
    "VITRINE_DELIVERY_CLAIM_IDLE_S": "2",
    "VITRINE_PANEL_REFRESH_S": "1",
    "MERCADOPAGO_ACCESS_TOKEN": "TEST-storefront",
}
MANAGE_GUILD = 1 << 5


@pytest.fixture
def fleet_env() -> dict[str, str]:
    return dict(STOREFRONT_ENV)


@dataclass
class Store:
    bot: Any
    guild: GuildInfo
    tenant: Any
    instance_id: int
    product: Any
    variations: list[Any]
    staff: Buyer
    buyer: Buyer

    @property
    def shop_channel(self) -> str:
        return self.guild.channel("loja")

    @property
    def log_channel(self) -> str:
        return self.guild.channel("vendas")


async def make_store(fleet: Fleet, dc: DiscordSandbox, *, stock: dict[str, list[str]],
                     prices: dict[str, int] | None = None, buyer_locale: str = "pt-BR",
                     name: str = "Loja") -> Store:
    """A tenant with a bot in a guild (#loja, #vendas, roles Cliente/Equipe), one product
    with the given variations and stock, a staff member and a buyer."""
    from fleet.models import BotInstance
    from shop.models import Account, Product, Tenant, Variation
    from shop.stock import add_stock

    bot = await dc.create_bot(name)
    raw = await dc.call("POST", "/_sandbox/guilds", json={
        "name": "Servidor", "channels": [{"name": "loja"}, {"name": "vendas"}],
        "roles": [{"name": "Cliente"}, {"name": "Equipe", "permissions": MANAGE_GUILD}],
        "bots": [bot.application_id]})
    guild = await dc.guild(raw["id"])
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="seller")
    tenant = await Tenant.create(owner=owner, name=name, guild_id=guild.id,
                                 sales_log_channel_id=guild.channel("vendas"),
                                 buyer_role_id=guild.role("Cliente"))
    inst = await BotInstance.create(tenant=tenant, name=name,
                                    token_enc=fleet.vault.encrypt(bot.token))
    product = await Product.create(tenant=tenant, name="Netflix", description="Conta premium",
                                   max_per_order=5)
    variations = []
    for vname, items in stock.items():
        price = (prices or {}).get(vname, 1990)
        variation = await Variation.create(tenant=tenant, product=product, name=vname,
                                           price_cents=price)
        if items:
            await add_stock(fleet.vault, tenant.id, variation.id, "\n".join(items), "test",
                            hash_key=fleet.stock_hash_key)
        variations.append(variation)
    staff = await dc.buyer("equipe", guilds=[])
    await dc.add_member(guild, staff.id, roles=["Equipe"])
    buyer = await dc.buyer("ana", guilds=[guild], locale=buyer_locale)
    return Store(bot, guild, tenant, inst.id, product, variations, staff, buyer)


def payment_services(sandbox: RunningSandbox, redis_url: str) -> Any:
    """What the portal's webhook handler uses to apply a payment (sync → paid → enqueue)."""
    from shop.payments.mercadopago import MercadoPagoGateway
    from shop.payments.service import PaymentServices

    gateway = MercadoPagoGateway(sandbox.mp_api_base, "TEST-storefront",
                                 "http://127.0.0.1:9/webhooks/mercadopago")
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    return PaymentServices(gateway, redis, fee_bps=500, hold_days=7)


@pytest.fixture
async def svc(sandbox, redis_url) -> AsyncIterator[Any]:
    services = payment_services(sandbox, redis_url)
    try:
        yield services
    finally:
        await services.gateway.aclose()
        await services.redis.aclose()

"""Stores and a stream of purchases for the benches and the multi-host tests (moved here from
`bench/_world.py` so `tests/` can use them too): stores with stock, buyers checking out one
unit each, and approvals at a steady rate applied as the portal's webhook handler does."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ops.fleet_harness import Fleet
    from sandbox.discord.client import DiscordSandbox


async def make_stores(fleet: Fleet, dc: DiscordSandbox, bots: int, per_bot: int) -> list:
    """(bot, guild, tenant, instance, variation) for `bots` stores with `per_bot` keys each."""
    from fleet.models import BotInstance
    from shop.models import Account, Product, Tenant, Variation
    from shop.stock import add_stock

    stores = []
    for n in range(bots):
        bot = await dc.create_bot(f"Loja{n}")
        guild = await dc.create_guild(f"S{n}", channels=["loja"], bots=[bot])
        owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username=f"s{n}")
        tenant = await Tenant.create(owner=owner, name=f"Loja{n}", guild_id=guild.id)
        inst = await BotInstance.create(
            tenant=tenant, name=f"Loja{n}", token_enc=fleet.vault.encrypt(bot.token)
        )
        product = await Product.create(tenant=tenant, name="Key")
        variation = await Variation.create(
            tenant=tenant, product=product, name="v", price_cents=1990
        )
        await add_stock(
            fleet.vault,
            tenant.id,
            variation.id,
            "\n".join(f"KEY-{n}-{i}" for i in range(per_bot)),
            "bench",
            hash_key=fleet.stock_hash_key,
        )
        stores.append((bot, guild, tenant, inst, variation))
    return stores


async def checkout_order(svc, dc, store, buyer_name: str) -> tuple[Any, Any]:
    """A new buyer in the store's guild checks out one unit: (order, buyer)."""
    from shop.checkout import CheckoutRequest, checkout

    _, guild, tenant, inst, variation = store
    buyer = await dc.buyer(buyer_name, guilds=[guild])
    order, _ = await checkout(
        svc,
        CheckoutRequest(
            tenant.id,
            inst.id,
            variation.id,
            1,
            buyer.id,
            key=uuid.uuid4().hex,
            guild_id=guild.id,
            channel_id=guild.channel("loja"),
        ),
    )
    return order, buyer


async def make_orders(svc, dc, stores, per_bot: int) -> list[tuple[int, str, str]]:
    """(order id, buyer id, bot user id) for every order, interleaved across bots."""
    out = []
    for i in range(per_bot):
        for store in stores:
            order, buyer = await checkout_order(svc, dc, store, f"b{i}")
            out.append((order.id, buyer.id, store[0].user_id))
    return out


async def approve_at_rate(mpc, svc, orders, rate: float, approved: dict[str, float]) -> None:
    """Approve every order at `rate`/s and apply it as the webhook would (with retries)."""
    from shop.models import Payment
    from shop.payments.sync import sync_payment

    start = time.monotonic()

    async def one(i: int, order_id: int, buyer_id: str) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        payment = await Payment.get(order_id=order_id)
        await mpc.approve(str(payment.provider_payment_id))  # a payment or an order
        approved[buyer_id] = time.monotonic()
        for attempt in range(5):  # as MP would re-send the webhook after an error
            try:
                await sync_payment(svc, str(payment.id), "bench:webhook")
                return
            except Exception as exc:  # noqa: BLE001 - e.g. SQLite "database is locked"
                print(f"sync retry {attempt + 1}: {exc}", file=sys.stderr)
                await asyncio.sleep(0.2)

    await asyncio.gather(*(one(i, oid, buyer) for i, (oid, buyer, _) in enumerate(orders)))

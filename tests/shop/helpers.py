"""Shared helpers for payment tests: a store with stock, orders, settings, a served portal."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from core.settings import Settings, load_settings
from fleet.models import BotInstance
from sandbox.mercadopago import MercadoPagoConfig
from shop.models import Account, Order, Product, StockItem, Tenant, Variation
from shop.states import StockStatus

SECRET = "test-webhook-secret-0123456789"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
MP_FAST = MercadoPagoConfig(
    webhook_secret=SECRET, webhook_retry_delays=(0.05, 0.1, 0.2), sweep_interval=0.05
)


def make_settings(
    tmp_path: Any,
    database_url: str,
    redis_url: str,
    *,
    mp_url: str,
    portal_port: int = 1,
    fee_percent: str = "5",
    hold_days: int = 7,
) -> Settings:
    return load_settings(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_DIR": str(tmp_path / "logs"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "MERCADOPAGO_ACCESS_TOKEN": "TEST-token",
            "MERCADOPAGO_WEBHOOK_SECRET": SECRET,
            "MERCADOPAGO_API_BASE": mp_url,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{portal_port}",
            "PORTAL_PORT": str(portal_port),
            "PLATFORM_FEE_PERCENT": fee_percent,
            "WITHDRAWAL_HOLD_DAYS": str(hold_days),
            "MERCADOPAGO_API": "payments",  # pinned: a fresh DATA_DIR would get orders
        },
        env_file=None,
    )


async def make_store(
    name: str = "Loja", price_cents: int = 1990, stock: int = 5, tenant: Tenant | None = None
) -> dict[str, Any]:
    """A tenant (new, or the one given) with one bot instance, one product/variation and
    `stock` items."""
    if tenant is None:
        owner = await Account.create(discord_id=str(uuid.uuid4().int)[:18], username="seller")
        tenant = await Tenant.create(owner=owner, name=name)
    inst = await BotInstance.create(tenant=tenant, token_enc="x")
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(
        tenant=tenant, product=product, name="1 mês", price_cents=price_cents
    )
    for i in range(stock):
        await StockItem.create(
            tenant=tenant, variation=variation, content_enc=f"enc{i}", content_hash=uuid.uuid4().hex
        )
    return {"tenant": tenant, "instance": inst, "product": product, "variation": variation}


async def make_order(
    store: dict[str, Any],
    quantity: int = 1,
    *,
    reserve: bool = True,
    reserved_for: timedelta = timedelta(minutes=30),
) -> Order:
    """A pending order that reserved `quantity` items (as checkout will do)."""
    variation = store["variation"]
    until = datetime.now(UTC) + reserved_for
    order = await Order.create(
        tenant=store["tenant"],
        instance=store["instance"],
        product=store["product"],
        variation=variation,
        interaction_id=str(uuid.uuid4().int)[:20],
        buyer_discord_id="555",
        quantity=quantity,
        unit_price_cents=variation.price_cents,
        total_cents=variation.price_cents * quantity,
        reserved_until=until,
    )
    if reserve:
        items = await StockItem.filter(variation=variation, status=StockStatus.AVAILABLE).limit(
            quantity
        )
        for item in items:
            item.status = StockStatus.RESERVED
            item.order = order
            item.reserved_until = until
            await item.save()
    return order


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never became true (last: {value!r})")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serve_quart(app: Any, port: int) -> AsyncIterator[str]:
    """Serve a Quart app with hypercorn on 127.0.0.1:port in this event loop."""
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 5
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(serve(app, config, shutdown_trigger=stop.wait))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.get(base + "/health")
                break
            except httpx.TransportError:
                if task.done() or time.monotonic() > deadline:
                    await task
                    raise
                await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        await task

"""Admin API tests: the token, settings for an admin app, database factories."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet

from core.settings import load_settings

TOKEN = "admin-token-0123456789abcdef"
OLD_TOKEN = "admin-token-previous-0123456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_seq = itertools.count(1)


def admin_settings(tmp_path, database_url: str, redis_url: str, **extra: str):
    return load_settings(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_DIR": str(tmp_path / "logs"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ADMIN_API_TOKEN": f"{TOKEN},{OLD_TOKEN}",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PORTAL_PORT": "1",
            "MERCADOPAGO_API": "payments",  # pinned: a fresh DATA_DIR would get orders
            **extra,
        },
        env_file=None,
    )


# --- factories ---------------------------------------------------------------------------------
async def make_account(**kw: Any):
    from shop.models import Account

    n = next(_seq)
    return await Account.create(**{"discord_id": f"9000{n}", "username": f"user{n}", **kw})


async def make_tenant(owner=None, **kw: Any):
    from shop.models import Tenant

    owner = owner or await make_account()
    return await Tenant.create(**{"owner": owner, "name": f"Loja {next(_seq)}", **kw})


async def make_instance(tenant=None, **kw: Any):
    from fleet.models import BotInstance

    tenant = tenant or await make_tenant()
    return await BotInstance.create(
        **{"tenant": tenant, "name": f"bot{next(_seq)}", "token_enc": "x", **kw}
    )


async def make_variation(tenant, price: int = 1000):
    from shop.models import Product, Variation

    product = await Product.create(tenant=tenant, name=f"Produto {next(_seq)}")
    return await Variation.create(tenant=tenant, product=product, name="padrão", price_cents=price)


async def add_stock(variation, count: int) -> list:
    from shop.models import StockItem

    items = []
    for _ in range(count):
        n = next(_seq)
        items.append(
            await StockItem.create(
                tenant_id=variation.tenant_id,
                variation=variation,
                content_enc=f"enc{n}",
                content_hash=f"{n:064d}",
            )
        )
    return items


async def make_order(
    variation,
    *,
    status="pending",
    quantity: int = 1,
    instance=None,
    paid_ago: timedelta | None = None,
    **kw: Any,
):
    from shop.models import Order

    paid_at = datetime.now(UTC) - paid_ago if paid_ago is not None else None
    return await Order.create(
        **{
            "tenant_id": variation.tenant_id,
            "product_id": variation.product_id,
            "variation": variation,
            "instance": instance,
            "interaction_id": f"i{next(_seq)}",
            "buyer_discord_id": "555",
            "quantity": quantity,
            "unit_price_cents": variation.price_cents,
            "total_cents": variation.price_cents * quantity,
            "status": status,
            "paid_at": paid_at,
            **kw,
        }
    )

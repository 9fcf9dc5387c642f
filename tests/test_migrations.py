"""The committed migrations and the models agree, on SQLite and PostgreSQL."""

import pytest
from tortoise.exceptions import IntegrityError

from core.vault import TokenVault, generate_key
from fleet.models import BotInstance
from ops.migrations import pending
from shop.models import Account, Order, Product, Tenant, Variation


async def test_models_have_no_changes_missing_from_migrations():
    assert await pending() == ""


async def test_migrated_schema_stores_the_whole_commerce_chain(db):
    vault = TokenVault([generate_key()])
    owner = await Account.create(discord_id="111", username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja")
    inst = await BotInstance.create(tenant=tenant, token_enc=vault.encrypt("tok"))
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(
        tenant=tenant, product=product, name="1 mês", price_cents=1990
    )
    order = await Order.create(
        tenant=tenant,
        instance=inst,
        product=product,
        variation=variation,
        interaction_id="9001",
        buyer_discord_id="222",
        quantity=2,
        unit_price_cents=1990,
        total_cents=3980,
    )
    fetched = await Order.get(id=order.id).prefetch_related("variation")
    assert fetched.total_cents == 3980 and isinstance(fetched.total_cents, int)
    assert fetched.variation.price_cents == 1990
    with pytest.raises(IntegrityError):
        await Order.create(
            tenant=tenant,
            product=product,
            variation=variation,
            interaction_id="9001",
            buyer_discord_id="222",
            quantity=1,
            unit_price_cents=1990,
            total_cents=1990,
        )


async def test_apply_is_idempotent(database_url):
    from core.db import close_db
    from ops.migrations import apply

    assert await apply(database_url) == []
    await close_db()

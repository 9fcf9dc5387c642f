"""Fencing where deliveries are written (shop.delivery, fleet.guildscope), SQLite + PostgreSQL:
a worker whose node was replaced claims, allocates and marks nothing; the owner delivers the
order exactly once."""

from __future__ import annotations

import uuid

import pytest

from core.vault import TokenVault, generate_key
from fleet import fencing
from fleet.errors import FencedOut
from fleet.fencing import Fence
from fleet.guildscope import record_bot_public, record_foreign_guild
from fleet.models import Alert, BotInstance
from shop import delivery
from shop.models import Account, DeliveryPath, Order, Product, StockItem, Tenant, Variation
from shop.orders import transition
from shop.states import OrderStatus, StockStatus
from shop.stock import add_stock

VAULT = TokenVault([generate_key()])
OLD, NEW = 5, 6  # the replaced worker's token, the new owner's


async def _paid_order(quantity: int = 2, stock: int = 3) -> Order:
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="s")
    tenant = await Tenant.create(owner=owner, name="Loja")
    inst = await BotInstance.create(tenant=tenant, token_enc="x")
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(tenant=tenant, product=product, name="v", price_cents=1000)
    await add_stock(
        VAULT,
        tenant.id,
        variation.id,
        "\n".join(f"ITEM-{uuid.uuid4().hex}" for _ in range(stock)),
        "t",
        hash_key="test-stock-hash-key",
    )
    order = await Order.create(
        tenant=tenant,
        instance=inst,
        product=product,
        variation=variation,
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id="555",
        quantity=quantity,
        unit_price_cents=1000,
        total_cents=1000 * quantity,
    )
    await transition(order.id, OrderStatus.PAID, "test")
    return await Order.get(id=order.id)


async def _sold(order_id: int) -> list[int]:
    return sorted(i.id for i in await StockItem.filter(order_id=order_id, status=StockStatus.SOLD))


async def _replace_owner(order: Order) -> tuple[Fence, Fence]:
    """The old node was granted OLD, then another node was granted NEW (its claim)."""
    assert order.instance_id is not None
    await fencing.claim(order.instance_id, OLD)
    await fencing.claim(order.instance_id, NEW)
    return Fence(order.instance_id, OLD), Fence(order.instance_id, NEW)


async def test_fencing_a_delivery_claimed_with_a_stale_token_is_left_for_the_owner(db):
    order = await _paid_order()
    stale, owner = await _replace_owner(order)
    with pytest.raises(FencedOut):
        await delivery.prepare(order.id, VAULT, "worker:delivery", stale)
    left = await Order.get(id=order.id)
    assert left.status == OrderStatus.PAID and left.wake_at is not None  # still owed
    assert await _sold(order.id) == []  # nothing allocated
    available = await StockItem.filter(status=StockStatus.AVAILABLE).count()
    assert available == 3

    prepared = await delivery.prepare(order.id, VAULT, "worker:delivery", owner)
    assert prepared.outcome == delivery.Outcome.DELIVER and len(prepared.items) == 2
    await delivery.record_send_attempt(order.id, prepared.nonce, "dm-1", owner)
    await delivery.record_sent(order.id, "dm-1", "msg-1", owner)
    assert await delivery.mark_delivered(order.id, DeliveryPath.DM, "worker:delivery", owner)
    done = await Order.get(id=order.id)
    assert done.status == OrderStatus.DELIVERED and done.wake_at is None
    assert done.delivery_attempts == 1 and done.delivery_message_id == "msg-1"
    again = await delivery.prepare(order.id, VAULT, "worker:delivery", owner)
    assert again.outcome == delivery.Outcome.DONE  # a re-sent job delivers nothing twice
    assert len(await _sold(order.id)) == 2


async def test_fencing_a_worker_replaced_mid_delivery_records_nothing_and_the_owner_finishes(db):
    """The old worker allocated (as owner), then was paused while another node took the bot:
    its send attempt, delivered mark and failure mark are refused; the owner sends the same
    items under the same nonce (Discord returns the first message) and marks it once."""
    order = await _paid_order()
    assert order.instance_id is not None
    await fencing.claim(order.instance_id, OLD)
    stale = Fence(order.instance_id, OLD)
    first = await delivery.prepare(order.id, VAULT, "worker:delivery", stale)
    assert first.outcome == delivery.Outcome.DELIVER
    await fencing.claim(order.instance_id, NEW)  # the other node's grant
    owner = Fence(order.instance_id, NEW)
    for write in (
        delivery.record_send_attempt(order.id, first.nonce, "dm-1", stale),
        delivery.record_sent(order.id, "dm-1", "msg-stale", stale),
        delivery.mark_delivered(order.id, DeliveryPath.DM, "worker:delivery", stale),
        delivery.mark_failed(order.id, stale),
    ):
        with pytest.raises(FencedOut):
            await write
    untouched = await Order.get(id=order.id)
    assert untouched.status == OrderStatus.PAID
    assert untouched.delivery_attempts == 0 and untouched.delivery_attempted_at is None
    assert untouched.delivery_message_id is None and untouched.delivery_path is None

    second = await delivery.prepare(order.id, VAULT, "worker:delivery", owner)
    assert second.outcome == delivery.Outcome.DELIVER
    assert (second.items, second.nonce) == (first.items, first.nonce)
    assert await delivery.mark_delivered(order.id, DeliveryPath.DM, "worker:delivery", owner)
    assert not await delivery.mark_delivered(order.id, DeliveryPath.DM, "worker:delivery", owner)
    assert (await Order.get(id=order.id)).delivery_attempts == 2  # one counted by each marker
    assert len(await _sold(order.id)) == 2


async def test_fencing_web_and_reconciler_writes_carry_no_fence_and_are_not_checked(db):
    order = await _paid_order()
    await _replace_owner(order)
    prepared = await delivery.prepare(order.id, VAULT, "admin:resend")
    assert prepared.outcome == delivery.Outcome.DELIVER
    assert await delivery.mark_delivered(order.id, DeliveryPath.DM, "admin:resend")


async def test_fencing_runtime_facts_of_a_replaced_worker_are_refused(db):
    order = await _paid_order()
    stale, owner = await _replace_owner(order)
    iid, tenant_id = order.instance_id, order.tenant_id
    assert iid is not None
    with pytest.raises(FencedOut):
        await record_bot_public(iid, True, fence=stale)
    with pytest.raises(FencedOut):
        await record_foreign_guild(iid, tenant_id, "42", "Other", 3, fence=stale)
    assert (await BotInstance.get(id=iid)).bot_public is None
    assert await Alert.filter(instance_id=iid).count() == 0
    await record_bot_public(iid, True, fence=owner)
    await record_foreign_guild(iid, tenant_id, "42", "Other", 3, fence=owner)
    assert (await BotInstance.get(id=iid)).bot_public is True
    assert await Alert.filter(instance_id=iid).count() == 1

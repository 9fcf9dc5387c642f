"""End to end, real workers: crash during delivery, closed DMs, waiting for stock, bad input."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import pytest

from fleet.models import Alert, AlertKind
from fleet.states import InstanceState
from ops.fleet_harness import make_store
from shop.models import Order, Product, StockItem
from shop.states import StockStatus
from shop.stock import add_stock
from tests.storefront.helpers import (
    approve_and_sync,
    buy,
    confirm,
    order_id_of,
    post_panel,
    wait_ready,
    wait_status,
)

pytestmark = pytest.mark.e2e


async def test_worker_sigkilled_after_approval_before_dm_delivers_exactly_once(fleet, dc, mpc, svc):
    store = await make_store(fleet, dc, stock={"1 mês": ["ONLY-KEY", "OTHER-KEY"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    order_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    # opening the DM channel hangs: the worker has allocated the item, not sent the DM yet
    await dc.add_fault_rule(
        store.bot, "delay", method="POST", path="/users/@me/channels", delay_ms=5000
    )
    await approve_and_sync(mpc, svc, order_id)

    async def sold() -> bool:
        return await StockItem.filter(order_id=order_id, status=StockStatus.SOLD).count() == 1

    await fleet.wait_for("item sold", sold, timeout=10)
    first = await fleet.record(store.instance_id)
    os.kill(first.pid, signal.SIGKILL)
    await fleet.wait_state(
        store.instance_id, InstanceState.ONLINE, new_pid_than=first.pid, timeout=15
    )
    await wait_status(order_id, "delivered", timeout=20)
    await asyncio.sleep(3)  # time for any duplicate (re-claim, sweeper) to show up
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 1 and "ONLY-KEY" in dms[0].text()
    assert await StockItem.filter(status=StockStatus.SOLD).count() == 1
    assert await StockItem.filter(status=StockStatus.AVAILABLE).count() == 1


async def test_dms_closed_delivers_in_private_thread_and_records_channel_path(
    fleet, dc, mpc, svc, sandbox
):
    store = await make_store(fleet, dc, stock={"1 mês": ["THREAD-KEY"]})
    await dc.set_faults(store.bot, dms_closed=[store.buyer.id])
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    order_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    await approve_and_sync(mpc, svc, order_id)
    order = await wait_status(order_id, "delivered")
    assert order.delivery_path == "channel"
    thread = next(
        c for c in sandbox.discord_state.channels.values() if c.name == f"pedido-{order_id}"
    )
    assert thread.type == 12 and store.buyer.id in thread.recipients  # private, buyer added
    msg = await dc.wait_channel_message(thread.id, lambda m: m.embeds)
    assert "THREAD-KEY" in msg.text() and f"<@{store.buyer.id}>" in msg.content
    assert not [m for m in await store.buyer.dms() if m.embeds]


async def test_stock_empty_waiting_stock_then_restock_delivers_oldest_first(fleet, dc, mpc, svc):
    store = await make_store(fleet, dc, stock={"1 mês": ["FIRST"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    first = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    # the seller deletes the reserved item's twin path: simulate the race by cancelling the
    # reservation after payment (stock gone when the delivery runs)
    await StockItem.filter(order_id=first).update(status=StockStatus.SOLD, order_id=None)
    await approve_and_sync(mpc, svc, first)
    await wait_status(first, "waiting_stock")
    told = await store.buyer.wait_dm(lambda m: "sem estoque" in m.content, timeout=10)
    assert f"#{first}" in told.content
    await dc.wait_channel_message(store.log_channel, lambda m: "aguardando estoque" in m.content)
    assert await Alert.filter(kind=AlertKind.WAITING_STOCK).count() == 1
    await add_stock(
        fleet.vault,
        store.tenant.id,
        store.variations[0].id,
        "RESTOCK-1\n",
        "seller",
        redis=svc.redis,
        hash_key=fleet.stock_hash_key,
    )
    order = await wait_status(first, "delivered", timeout=15)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=10)
    assert "RESTOCK-1" in dm.text() and order.delivery_path == "dm"


async def test_bad_input_gets_clear_ephemeral_message_and_reserves_nothing(fleet, dc, mpc):
    store = await make_store(fleet, dc, stock={"1 mês": ["K1"]}, buyer_locale="en-US")
    fleet.env["VITRINE_PANEL_REFRESH_S"] = "60"  # keep the stale panel as buyers saw it
    fleet.start()
    await wait_ready(fleet, dc, store)
    buyer = store.buyer
    # a panel for a product deleted after it was posted
    stale_panel = await post_panel(store)
    await Product.filter(id=store.product.id).update(deleted_at=datetime.now(UTC))
    gone = await (await buyer.click(stale_panel, f"vt:buy:{store.variations[0].id}")).wait_reply()
    assert gone.ephemeral and "no longer for sale" in gone.content
    await Product.filter(id=store.product.id).update(deleted_at=None)

    async def slash(**options):
        return await (
            await buyer.slash(store.bot, store.guild, "loja", "comprar", options)
        ).wait_reply()

    unknown = await slash(produto="Spotify")
    assert unknown.ephemeral and "not found" in unknown.content
    for quantity in (0, 10_000):
        bad = await slash(produto="netflix", quantidade=quantity)
        assert bad.ephemeral and "Invalid quantity: choose 1 to 5" in bad.content
    card = (await slash(produto="Netflix")).message
    twin = (await slash(produto="Netflix")).message
    coupon = next(i for i in card.custom_ids() if i.startswith("vt:cpn:"))
    opened = await buyer.click(card, coupon)
    await opened.wait_modal()
    rejected = await (await buyer.submit_modal(opened, {"code": "NOPE"})).wait_reply()
    assert rejected.ephemeral and "Invalid coupon" in rejected.content
    # double click on confirm: one order
    clicks = [
        await buyer.click(card, next(i for i in card.custom_ids() if i.startswith("vt:ok")))
        for _ in range(2)
    ]
    replies = [await c.wait_reply(timeout=15) for c in clicks]
    only = await Order.get()
    assert {order_id_of(r) for r in replies} == {only.id}
    assert await Order.all().count() == 1
    sold_out = await confirm(buyer, twin)  # the only item is reserved by the first card
    assert "Sold out" in sold_out.content and await Order.all().count() == 1
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 1
    assert await Order.all().count() == 1

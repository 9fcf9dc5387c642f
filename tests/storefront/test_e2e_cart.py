"""End to end on the sandbox, real workers, SQLite and PostgreSQL (issue 17): a buyer fills a
cart from the panels, applies one coupon, pays one PIX and gets every line delivered; a line
whose stock ran out after checkout waits for stock alone and arrives after a restock; a line
that cannot be reserved is shown before paying and paying is refused naming it; nobody else
can press a buyer's cart buttons; pt-BR and en."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ops.fleet_harness import make_store
from sandbox.discord.client import Msg
from sandbox.discord.client_types import SandboxAPIError
from shop.models import Cart, Coupon, CouponKind, Order, Payment, StockItem
from shop.states import StockStatus
from shop.stock import add_stock
from tests.storefront.helpers import approve_and_sync, post_panel, wait_ready, wait_status

pytestmark = pytest.mark.e2e

PRICES = {"1 mês": 1990, "3 meses": 4990, "Anual": 9990}


@pytest.fixture
def fleet(db_fleet):
    """The harness's orchestrator on this test's database (SQLite or PostgreSQL)."""
    return db_fleet


async def _store(fleet, dc, **kw: Any) -> Any:
    store = await make_store(
        fleet,
        dc,
        stock={"1 mês": ["KEY-A1", "KEY-A2"], "3 meses": ["KEY-B1"], "Anual": ["KEY-C1"]},
        prices=PRICES,
        **kw,
    )
    fleet.start()
    await wait_ready(fleet, dc, store)
    await dc.wait_commands(store.bot, ["carrinho"], timeout=20)
    return store


async def add_to_cart(buyer: Any, panel: Msg, variation_id: int, quantity: int = 1) -> Msg:
    """Panel → "Adicionar ao carrinho" (button, or the variation in the cart select) →
    quantity modal; returns the cart message the buyer then sees."""
    ids = panel.custom_ids()
    if f"vt:cart:add:{variation_id}" in ids:
        opened = await buyer.click(panel, f"vt:cart:add:{variation_id}")
    else:
        pick = next(i for i in ids if i.startswith("vt:cart:pick:"))
        opened = await buyer.select(panel, pick, [str(variation_id)])
    await opened.wait_modal()
    reply = await (await buyer.submit_modal(opened, {"qty": str(quantity)})).wait_reply()
    assert reply.ephemeral and reply.message is not None, reply
    return reply.message


def _button(msg: Msg, prefix: str) -> str:
    return next(i for i in msg.custom_ids() if i.startswith(prefix))


async def _apply_coupon(buyer: Any, cart_msg: Msg, code: str) -> Msg:
    opened = await buyer.click(cart_msg, _button(cart_msg, "vt:cart:cpn:"))
    await opened.wait_modal()
    reply = await (await buyer.submit_modal(opened, {"code": code})).wait_reply()
    return cast(Msg, reply.message)  # the cart message, edited in place


def _delivered_keys(dms: list[Msg]) -> list[str]:
    return sorted(
        line for m in dms for line in m.text().split("\n") if line.startswith(("KEY-", "NEW-"))
    )


async def test_three_lines_one_coupon_one_pix_all_delivered_and_one_line_waits_for_stock(
    fleet, dc, mpc, svc
):
    store = await _store(fleet, dc)
    await Coupon.create(tenant=store.tenant, code="PROMO10", kind=CouponKind.PERCENT, value=1000)
    one, three, year = store.variations
    panel = await post_panel(store)
    assert {"vt:cart:view", f"vt:cart:pick:{store.product.id}"} <= set(panel.custom_ids())

    await add_to_cart(store.buyer, panel, one.id, 2)
    await add_to_cart(store.buyer, panel, three.id)
    cart_msg = await add_to_cart(store.buyer, panel, year.id)
    assert "R$ 189,60" in cart_msg.text()  # 2 × 19,90 + 49,90 + 99,90
    cart_msg = await _apply_coupon(store.buyer, cart_msg, "promo10")
    text = cart_msg.text()
    assert "PROMO10" in text and "−R$ 18,96" in text and "R$ 170,64" in text
    assert "Netflix** — 1 mês × 2" in text and "Anual × 1" in text

    pay = _button(cart_msg, "vt:cart:pay:")
    pix = await (await store.buyer.click(cart_msg, pay)).wait_reply(timeout=15)
    assert pix.ephemeral and pix.message.attachments[0]["filename"] == "pix.png"
    cart = await Cart.get(buyer_discord_id=store.buyer.id)
    assert f"carrinho #{cart.id}" in pix.message.text() and "R$ 170,64" in pix.message.text()
    again = await (await store.buyer.click(cart_msg, pay)).wait_reply(timeout=15)
    assert f"#{cart.id}" in again.message.text()  # a double click: the same cart, one PIX
    assert await Cart.all().count() == 1 and await Payment.all().count() == 1
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    assert [(o.variation_id, o.quantity) for o in lines] == [
        (one.id, 2),
        (three.id, 1),
        (year.id, 1),
    ]
    assert sum(o.total_cents for o in lines) == 17064 == cart.total_cents
    payment = await Payment.get(cart_id=cart.id)
    assert payment.order_id == lines[0].id and payment.amount_cents == 17064

    # "Anual"'s reserved key is sold elsewhere before the PIX lands: that line alone waits
    await StockItem.filter(order_id=lines[2].id).update(status=StockStatus.SOLD, order_id=None)
    await approve_and_sync(mpc, svc, lines[0].id)
    await wait_status(lines[0].id, "delivered")
    await wait_status(lines[1].id, "delivered")
    await wait_status(lines[2].id, "waiting_stock")
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert _delivered_keys(dms) == ["KEY-A1", "KEY-A2", "KEY-B1"]
    log = await dc.wait_channel_message(
        store.log_channel, lambda m: f"Carrinho #{cart.id}, linha 2/3" in m.text(), timeout=10
    )
    assert f"#{lines[1].id}" in log.text()

    await add_stock(
        fleet.vault, store.tenant.id, year.id, "NEW-C2\n", "seller",
        redis=svc.redis, hash_key=fleet.stock_hash_key,
    )  # fmt: skip
    await wait_status(lines[2].id, "delivered", timeout=15)
    await store.buyer.wait_dm(lambda m: "NEW-C2" in m.text(), timeout=10)
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert _delivered_keys(dms) == ["KEY-A1", "KEY-A2", "KEY-B1", "NEW-C2"]  # each line once

    mine = await (
        await store.buyer.slash(store.bot, store.guild, "loja", "meus-pedidos")
    ).wait_reply()
    listing = mine.message.text()
    assert listing.count(f"Carrinho #{cart.id}") == 1 and "R$ 170,64" in listing
    assert all(f"#{o.id}" in listing for o in lines)


async def test_unreservable_line_shown_before_paying_refused_by_name_then_cancel_in_english(
    fleet, dc, mpc
):
    store = await _store(fleet, dc, buyer_locale="en-US")
    one, _three, year = store.variations
    panel = await post_panel(store)
    await add_to_cart(store.buyer, panel, one.id)
    await add_to_cart(store.buyer, panel, year.id)
    # someone else bought the last "Anual" meanwhile
    await StockItem.filter(variation_id=year.id).update(status=StockStatus.SOLD)

    shown = await (await store.buyer.click(panel, "vt:cart:view")).wait_reply()
    cart_msg = cast(Msg, shown.message)
    assert shown.ephemeral and "Your cart" in cart_msg.text()
    assert "Anual × 1" in cart_msg.text() and "out of stock" in cart_msg.text()
    refused = await (
        await store.buyer.click(cart_msg, _button(cart_msg, "vt:cart:pay:"))
    ).wait_reply(timeout=15)
    assert "You cannot pay yet" in refused.content and "Netflix — Anual" in refused.content
    assert await Cart.all().count() == 0 and await Payment.all().count() == 0
    assert await mpc.payments() == []  # nothing reached Mercado Pago

    # another member of the server can neither see nor press this cart's buttons
    other = await dc.buyer("bia", guilds=[store.guild], locale="pt-BR")
    with pytest.raises(SandboxAPIError) as denied:
        await other.click(cart_msg, _button(cart_msg, "vt:cart:pay:"))
    assert denied.value.status == 404
    theirs = await (await other.click(panel, "vt:cart:view")).wait_reply()
    assert "Seu carrinho está vazio" in theirs.message.text()

    # remove the line (button 2), pay, then cancel the cart from the PIX card
    removed = await (
        await store.buyer.click(
            cart_msg, _button(cart_msg, f"vt:cart:rm:{store.buyer.id}:{year.id}:")
        )
    ).wait_reply()
    cart_msg = cast(Msg, removed.message)
    assert "Anual" not in cart_msg.text() and "R$ 19,90" in cart_msg.text()
    pix = await (await store.buyer.click(cart_msg, _button(cart_msg, "vt:cart:pay:"))).wait_reply(
        timeout=15
    )
    assert "PIX — cart #" in pix.message.text()
    cart = await Cart.get(buyer_discord_id=store.buyer.id)
    cancel = await (await store.buyer.click(pix.message, f"vt:cart:cx:{cart.id}")).wait_reply()
    assert f"Cart #{cart.id} cancelled" in cancel.message.text()
    orders = await Order.filter(cart_id=cart.id)
    assert [o.status for o in orders] == ["cancelled"]
    assert await StockItem.filter(variation_id=one.id, status=StockStatus.AVAILABLE).count() == 2


async def test_forged_cart_buttons_of_another_buyer_change_nothing(db):
    """Discord lets only the owner press an ephemeral message; a forged custom id naming
    someone else's cart is refused by the handlers too."""
    from types import SimpleNamespace

    from shop.cart_checkout import place_cart
    from shop.models import CartLine
    from tests.shop.cart_helpers import fill_cart, request, three_line_store
    from worker.extensions.storefront import cart_ui

    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 1}, buyer="111")
    sf = SimpleNamespace(ctx=SimpleNamespace(tenant_id=store["tenant"].id))
    intruder = SimpleNamespace(author=SimpleNamespace(id=222), locale=None)
    with pytest.raises(cart_ui.NotCartOwner):
        await cart_ui.on_remove(sf, intruder, ["111", str(store["a"].id), ""])
    with pytest.raises(cart_ui.NotCartOwner):
        await cart_ui.on_clear(sf, intruder, ["111"])
    with pytest.raises(cart_ui.NotCartOwner):
        await cart_ui.on_pay(sf, intruder, ["111", ""])
    assert await CartLine.filter(buyer_discord_id="111").count() == 2
    cart, _ = await place_cart(request(store, buyer="111"))
    with pytest.raises(cart_ui.NotCartOwner):
        await cart_ui.on_cancel(sf, intruder, [str(cart.id)])
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {"pending"}


async def test_cancelling_one_line_of_an_unpaid_cart_cancels_the_whole_cart(db):
    """One PIX pays the cart: a line's own cancel button (`vt:cancel:<order>`) must not leave
    that PIX payable for the full total with one line closed; it gives up the cart."""
    import asyncio
    from types import SimpleNamespace

    from shop.cart_checkout import place_cart
    from tests.shop.cart_helpers import fill_cart, request, three_line_store
    from worker.extensions.storefront import checkout_ui

    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 1}, buyer="111")
    cart, _ = await place_cart(request(store, buyer="111"))
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    edited: list[dict[str, object]] = []

    async def edit_message(**kwargs: object) -> None:
        edited.append(kwargs)

    def no_provider() -> None:
        raise RuntimeError("no payment provider in this test")

    sf = SimpleNamespace(
        ctx=SimpleNamespace(tenant_id=store["tenant"].id),
        panel_dirty=asyncio.Event(),
        payments=no_provider,
    )
    owner = SimpleNamespace(
        author=SimpleNamespace(id=111),
        locale=None,
        response=SimpleNamespace(edit_message=edit_message),
    )
    await checkout_ui.on_cancel(sf, owner, [str(lines[-1].id)])  # the non-lead line
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {"cancelled"}
    assert edited and sf.panel_dirty.is_set()

"""A buyer's journey through the Discord sandbox: the staff posts the panel, the buyer opens a
variation's card and confirms. Used by `vitrine demo buy`, the end-to-end tests and the bench."""

from __future__ import annotations

from typing import Any

from sandbox.discord.client import Buyer, Msg


async def post_panel(store: Any, product: str = "Netflix") -> Msg:
    """The staff posts the panel; returns the product's panel message as buyers see it.

    `store` needs `staff`, `bot`, `guild` and `shop_channel`."""
    reply = await (await store.staff.slash(store.bot, store.guild, "loja", "painel")).wait_reply(
        timeout=10
    )
    assert "1" in reply.content, reply
    msgs = await store.staff.sandbox.channel_messages(store.shop_channel)
    return next(m for m in reversed(msgs) if m.embeds and m.embeds[0]["title"] == product)


async def open_card(buyer: Buyer, panel: Msg, variation_id: int) -> Msg:
    ids = panel.custom_ids()
    if f"vt:buy:{variation_id}" in ids:
        result = await buyer.click(panel, f"vt:buy:{variation_id}")
    else:
        pick = next(i for i in ids if i.startswith("vt:pick:"))
        result = await buyer.select(panel, pick, [str(variation_id)])
    reply = await result.wait_reply(timeout=10)
    assert reply.ephemeral and reply.message is not None, reply
    return reply.message


async def confirm(buyer: Buyer, card: Msg) -> Any:
    ok = next(i for i in card.custom_ids() if i.startswith("vt:ok:"))
    return await (await buyer.click(card, ok)).wait_reply(timeout=15)


async def buy(
    buyer: Buyer, panel: Msg, variation_id: int, quantity: int = 1, coupon: str | None = None
) -> Any:
    """Panel → card → quantity → coupon → confirm; returns the PIX reply."""
    card = await open_card(buyer, panel, variation_id)
    if quantity != 1:
        qty_id = next(i for i in card.custom_ids() if i.startswith("vt:qty:"))
        card = (await (await buyer.select(card, qty_id, [str(quantity)])).wait_reply()).message
    if coupon:
        cpn = next(i for i in card.custom_ids() if i.startswith("vt:cpn:"))
        opened = await buyer.click(card, cpn)
        await opened.wait_modal()
        card = (await (await buyer.submit_modal(opened, {"code": coupon})).wait_reply()).message
    return await confirm(buyer, card)


def order_id_of(pix_reply: Any) -> int:
    cancel = next(i for i in pix_reply.message.custom_ids() if i.startswith("vt:cancel:"))
    return int(cancel.rsplit(":", 1)[1])

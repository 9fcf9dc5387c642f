"""Buyer journeys through the sandbox, shared by the end-to-end tests and the bench."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sandbox.discord.client import Buyer, Msg


async def wait_ready(fleet: Any, dc: Any, store: Any) -> None:
    from fleet.states import InstanceState

    await fleet.wait_state(store.instance_id, InstanceState.ONLINE, timeout=30)
    await dc.wait_commands(store.bot, ["painel", "comprar", "meus-pedidos"], timeout=20)


async def post_panel(store: Any) -> Msg:
    """The staff posts the panel; returns the product's panel message as buyers see it."""
    reply = await (await store.staff.slash(store.bot, store.guild, "loja", "painel")
                   ).wait_reply(timeout=10)
    assert "1" in reply.content, reply
    msgs = await store.staff.sandbox.channel_messages(store.shop_channel)
    return next(m for m in reversed(msgs) if m.embeds and m.embeds[0]["title"] == "Netflix")


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


async def buy(buyer: Buyer, panel: Msg, variation_id: int, quantity: int = 1,
              coupon: str | None = None) -> Any:
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


async def approve_and_sync(mpc: Any, svc: Any, order_id: int) -> float:
    """Approve the order's PIX in the MP sandbox and apply it as the webhook would;
    returns the monotonic time of the approval."""
    from shop.models import Payment
    from shop.payments.sync import sync_payment

    payment = await Payment.get(order_id=order_id)
    await mpc.approve(int(payment.provider_payment_id))
    approved_at = time.monotonic()
    await sync_payment(svc, str(payment.id), "test:webhook")
    return approved_at


async def wait_status(order_id: int, status: str, timeout: float = 15.0) -> Any:  # noqa: ASYNC109
    from shop.models import Order

    deadline = time.monotonic() + timeout
    while True:
        order = await Order.get(id=order_id)
        if order.status == status:
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {order.status}, wanted {status}")
        await asyncio.sleep(0.05)

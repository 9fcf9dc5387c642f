"""A buyer's journey through the Discord sandbox: the staff posts the panel, the buyer opens a
variation's card and confirms. Used by `vitrine demo buy`, the end-to-end tests and the bench."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ops.errors import CliError
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
        reply = await (await buyer.select(card, qty_id, [str(quantity)])).wait_reply()
        card = cast(Msg, reply.message)  # the card's reply carries the updated card
    if coupon:
        cpn = next(i for i in card.custom_ids() if i.startswith("vt:cpn:"))
        opened = await buyer.click(card, cpn)
        await opened.wait_modal()
        reply = await (await buyer.submit_modal(opened, {"code": coupon})).wait_reply()
        card = cast(Msg, reply.message)  # the card's reply carries the updated card
    return await confirm(buyer, card)


def order_id_of(pix_reply: Any) -> int:
    cancel = next(i for i in pix_reply.message.custom_ids() if i.startswith("vt:cancel:"))
    return int(cancel.rsplit(":", 1)[1])


@dataclass
class _Store:
    bot: Any
    guild: Any
    staff: Any
    shop_channel: str


async def demo_purchase(
    state: dict[str, Any], variation: dict[str, Any], echo: bool = False, approve: bool = True
) -> str | None:
    """The real storefront flow as the sandbox buyer; returns the delivered item (or None
    when `approve` is false: the order then stays pending with its PIX)."""
    from sandbox.discord.client import Bot, Buyer, DiscordSandbox
    from sandbox.mercadopago.client import MercadoPagoSandboxClient

    def say(msg: str) -> None:
        if echo:
            print(msg, flush=True)

    async with (
        DiscordSandbox(state["discord_base"]) as dc,
        MercadoPagoSandboxClient(state["mp_base"]) as mp,
    ):
        b = state["bot"]
        bot = Bot(b["application_id"], "", b["user_id"], b["name"])
        guild = await dc.guild(state["guild_id"])
        staff = Buyer(dc, state["staff"], "pt-BR")
        buyer = Buyer(dc, state["buyer"], "pt-BR")
        store = _Store(bot, guild, staff, state["shop_channel"])
        say("1. staff posts /painel in #loja")
        panel = await post_panel(store, state["product"])
        say(f"   panel: {panel.embeds[0]['title']}")
        before = {p["id"] for p in await mp.payments()}
        say(f"2. buyer {state['buyer']['username']} picks {variation['name']} and confirms")
        pix = await buy(buyer, panel, variation["id"])
        if pix.message is None or not any(
            i.startswith("vt:cancel:") for i in pix.message.custom_ids()
        ):
            raise CliError(f"the bot answered without a PIX: {pix.content or pix.message}")
        order_id = order_id_of(pix)
        code = next(
            (line for line in pix.message.text().split("\n") if line.startswith("000201")), ""
        )
        say(f"3. PIX shown for order #{order_id}" + (f": {code[:40]}…" if code else ""))
        new = [p for p in await mp.payments() if p["id"] not in before]
        payment = max(new, key=lambda p: p["id"])
        if not approve:
            return None
        had = {m["id"] for m in await buyer.dms()}
        await mp.approve(payment["id"])
        say(
            f"4. payment {payment['id']} approved in the Mercado Pago sandbox; the sandbox "
            "sends the signed webhook to the portal"
        )
        dm = await buyer.wait_dm(lambda m: m["id"] not in had and m.embeds, timeout=30)
        items = [line for line in dm.text().split("\n") if line.startswith("DEMO-")]
        say(f"5. the bot delivered order #{order_id} by DM")
        return items[0] if items else dm.text()

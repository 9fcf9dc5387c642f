"""Manual delivery in Discord (issue 16): the buyer is told the seller will deliver, the sales
log gets an "Entregar" button, and staff deliver with a note (the button's modal or
`/entregar`). The note is recorded by `shop.fulfilment.fulfil`; the delivery job then sends it
like any delivery (once, DM or private thread) and marks the order delivered."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction

from core.i18n import t
from shop import delivery, fulfilment, inputs
from shop.models import Order
from worker.extensions.storefront.common import (
    GUILD_ONLY,
    Storefront,
    is_staff,
    locale_of,
    localized,
    reply,
    storefront_of,
)
from worker.extensions.storefront.send_once import send_dm

if TYPE_CHECKING:
    from worker.extensions.storefront.delivery import DeliveryConsumer

log = logging.getLogger("worker.storefront.fulfil")
STAFF = disnake.Permissions(manage_guild=True)


async def tell_awaiting(
    consumer: DeliveryConsumer, order: Order, prepared: delivery.Prepared
) -> None:
    """The order just became `awaiting_fulfilment`: DM the buyer (once, by nonce; a private
    thread when DMs are closed) and put an "Entregar" button in the sales log."""
    text = t(
        "kinds.manual.buyer_waiting", order.locale, order=order.id, product=prepared.product_name
    )
    nonce = f"v1-m{order.id}"[: delivery.NONCE_MAX_LEN]
    if not await send_dm(consumer.bot, order.buyer_discord_id, content=text, nonce=nonce):
        await consumer.tell_waiting_in_thread(order, text, nonce)
    tenant = await consumer.sf.tenant()
    if not tenant.sales_log_channel_id:
        return
    button = disnake.ui.Button(
        label=t("kinds.manual.deliver_button", "pt-BR", order=order.id),
        custom_id=f"vt:ful:{order.id}",
        style=disnake.ButtonStyle.primary,
    )
    content = t(
        "kinds.manual.log",
        "pt-BR",
        order=order.id,
        product=f"{prepared.product_name} — {prepared.variation_name}",
        buyer=f"<@{order.buyer_discord_id}>",
    )
    try:
        channel = consumer.bot.get_partial_messageable(int(tenant.sales_log_channel_id))
        await channel.send(
            content, components=[button], allowed_mentions=disnake.AllowedMentions.none()
        )
    except disnake.HTTPException as exc:
        log.warning("order %s: sales log not posted: %s", order.id, exc)


async def on_fulfil_button(sf: Storefront, inter: Any, args: list[str]) -> None:
    """The sales log's "Entregar" button: a modal for the note (staff only)."""
    locale = locale_of(inter)
    if not is_staff(inter):
        await reply(inter, t("storefront.staff.only", locale))
        return
    order_id = inputs.parse_id(args[0] if args else "")
    await inter.response.send_modal(
        title=t("kinds.manual.modal_title", locale, order=order_id),
        custom_id=f"vt:fulm:{order_id}",
        components=[
            disnake.ui.TextInput(
                label=t("kinds.manual.note_label", locale),
                custom_id="note",
                style=disnake.TextInputStyle.paragraph,
                min_length=1,
                max_length=fulfilment.MAX_NOTE_CHARS,
            )
        ],
    )


async def on_fulfil_modal(sf: Storefront, inter: Any, args: list[str]) -> None:
    if not is_staff(inter):
        await reply(inter, t("storefront.staff.only", locale_of(inter)))
        return
    note = inter.text_values.get("note") or ""
    await fulfil_and_reply(sf, inter, inputs.parse_id(args[0] if args else ""), note)


async def fulfil_and_reply(sf: Storefront, inter: Any, order_id: int, note: str) -> None:
    locale = locale_of(inter)
    recorded = await fulfilment.fulfil(
        sf.vault,
        sf.ctx.tenant_id,
        order_id,
        note,
        f"discord:{inter.author.id}",
        redis=sf.ctx.redis,
        fence=sf.ctx.fencing.fence,
    )
    key = "kinds.manual.recorded" if recorded else "kinds.manual.already"
    await reply(inter, t(key, locale, order=order_id))


@commands.slash_command(
    name=localized("entregar", "deliver"),
    description=localized(
        "Entregar um pedido manual com uma nota (equipe)",
        "Deliver a manual order with a note (staff)",
    ),
    contexts=GUILD_ONLY,
    default_member_permissions=STAFF,
)
async def entregar(
    inter: ApplicationCommandInteraction,
    pedido: commands.Range[int, 1, 2**53],
    nota: commands.String[str, 1, fulfilment.MAX_NOTE_CHARS],
) -> None:
    sf = storefront_of(inter)
    if not is_staff(inter):
        await reply(inter, t("storefront.staff.only", locale_of(inter)))
        return
    await sf.guarded(inter, fulfil_and_reply(sf, inter, int(pedido), nota))


def setup(sf: Storefront) -> None:
    sf.route("ful", lambda inter, args: on_fulfil_button(sf, inter, args))
    sf.route("fulm", lambda inter, args: on_fulfil_modal(sf, inter, args))
    sf.bot.add_slash_command(entregar)

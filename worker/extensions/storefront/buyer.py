"""Buyer commands: `/meus-pedidos` lists this store's orders and re-sends a delivery by DM."""

from __future__ import annotations

import io
from typing import Any

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction
from disnake.ui.select import StringSelect

from core.i18n import format_brl, t
from shop import delivery, inputs, tickets
from shop.cart_summary import positions as cart_positions
from shop.models import Order, Product
from shop.states import OrderStatus
from worker.extensions.storefront import cart_views, kind_messages, tickets_ui, views
from worker.extensions.storefront.accesses import access_field
from worker.extensions.storefront.common import (
    Storefront,
    locale_of,
    localized,
    reply,
    storefront_of,
)
from worker.extensions.storefront.send_once import send_dm

LIST_LIMIT = 10


async def my_orders(sf: Storefront, inter: ApplicationCommandInteraction) -> None:
    locale = locale_of(inter)
    orders = (
        await Order.filter(tenant_id=sf.ctx.tenant_id, buyer_discord_id=str(inter.author.id))
        .order_by("-id")
        .limit(LIST_LIMIT)
    )
    accesses = await access_field(sf.ctx.tenant_id, str(inter.author.id), locale)
    if not orders and accesses is None:
        await reply(inter, t("storefront.orders.none", locale))
        return
    names = dict(
        await Product.filter(id__in={o.product_id for o in orders}).values_list("id", "name")
    )

    def line_of(o: Order) -> str:
        return t(
            "storefront.orders.line",
            locale,
            order=o.id,
            product=names.get(o.product_id, "?"),
            quantity=o.quantity,
            total=format_brl(o.total_cents),
            status=t(f"storefront.status.{o.status}", locale),
            date=f"<t:{int(o.created_at.timestamp())}:d>",
        )

    # issue 17: the lines of one cart under one heading
    lines = cart_views.grouped_lines(orders, await cart_positions(orders), line_of, locale)
    embed = disnake.Embed(
        title=t("storefront.orders.title", locale),
        description="\n".join(lines) or None,
        colour=views.BRAND,
    )
    if accesses is not None:  # issue 16: active accesses and their end dates
        embed.add_field(name=accesses[0], value=accesses[1], inline=False)
    delivered = [o for o in orders if o.status == OrderStatus.DELIVERED]
    components: list[Any] = []
    if delivered:
        components = [
            StringSelect(
                custom_id="vt:resend",
                placeholder=t("storefront.orders.resend", locale),
                options=[
                    disnake.SelectOption(
                        label=f"#{o.id} — {names.get(o.product_id, '?')}"[:100], value=str(o.id)
                    )
                    for o in delivered
                ],
            )
        ]
    if await tickets.enabled(await sf.tenant()):  # "Preciso de ajuda" per order
        helper = tickets_ui.help_select(orders, names, locale)
        components += [helper] if helper is not None else []
    await reply(inter, embed=embed, components=components)


async def delivery_copy(
    sf: Storefront, order: Order, actor: str, locale: str
) -> tuple[disnake.Embed, tuple[str, bytes] | None]:
    """A delivered order's delivery again, as the DM showed it, whatever the product kind
    (nothing is allocated: `prepare` reports a delivered order done): (embed, attachment)."""
    prepared = await delivery.prepare(order.id, sf.vault, actor, sf.ctx.fencing.fence)
    await delivery.fill(prepared, sf.vault)
    return kind_messages.delivery_message(order, prepared, locale)


def as_file(attachment: tuple[str, bytes] | None) -> disnake.File | None:
    """A delivery's attachment as a file to send, under its own name (a FILE product's file
    keeps the name the seller uploaded it with)."""
    return disnake.File(io.BytesIO(attachment[1]), attachment[0]) if attachment else None


async def on_resend(sf: Storefront, inter: Any, args: list[str]) -> None:
    """Send a delivered order's items again: by DM, or right here when DMs are closed."""
    locale = locale_of(inter)
    order = await Order.get_or_none(
        id=inputs.parse_id(inter.values[0]),
        tenant_id=sf.ctx.tenant_id,
        buyer_discord_id=str(inter.author.id),
        status=OrderStatus.DELIVERED,
    )
    if order is None:
        await reply(inter, t("storefront.orders.not_found", locale))
        return
    embed, attachment = await delivery_copy(sf, order, f"buyer:{inter.author.id}", locale)
    if await send_dm(sf.bot, str(inter.author.id), embed=embed, file=as_file(attachment)):
        await reply(inter, t("storefront.orders.resent", locale, order=order.id))
        return
    file = as_file(attachment)  # a file object is read once: a fresh one
    await reply(
        inter,
        t("storefront.orders.dm_closed", locale),
        embed=embed,
        **({"file": file} if file else {}),
    )


# Also in the bot's DMs (registered globally for that): a buyer finds their orders from the
# delivery DM; the list is this store's and this buyer's only.
@commands.slash_command(
    name=localized("meus-pedidos", "my-orders"),
    description=localized("Seus pedidos nesta loja", "Your orders in this store"),
    contexts=disnake.InteractionContextTypes(guild=True, bot_dm=True),
)
async def meus_pedidos(inter: ApplicationCommandInteraction) -> None:
    sf = storefront_of(inter)
    await sf.guarded(inter, my_orders(sf, inter))


def setup(sf: Storefront) -> None:
    sf.route("resend", lambda inter, args: on_resend(sf, inter, args))
    sf.bot.add_slash_command(meus_pedidos)

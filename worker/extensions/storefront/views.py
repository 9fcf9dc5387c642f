"""Embeds and components the buyer sees; pure builders (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import disnake
from disnake.ui.select import StringSelect

from core.i18n import format_brl, t
from shop.kinds import UNLIMITED
from shop.models import Order, Product, Variation
from shop.pricing import Quote

BRAND = disnake.Colour(0x2B8A3E)
MAX_SELECT = 25


def _ts(moment: datetime | None, style: str = "t") -> str:
    return f"<t:{int(moment.timestamp())}:{style}>" if moment else "-"


def price_range(variations: list[Variation]) -> str:
    prices = sorted(v.price_cents for v in variations)
    if not prices:
        return "-"
    if prices[0] == prices[-1]:
        return format_brl(prices[0])
    return f"{format_brl(prices[0])} – {format_brl(prices[-1])}"


def in_stock(count: int, locale: str) -> str:
    """'3 disponível(is)', or 'disponível' for a product sold without a cap (shop.kinds)."""
    if count >= UNLIMITED:
        return t("kinds.panel.unlimited", locale)
    return t("storefront.panel.in_stock", locale, count=count)


def panel_embed(
    product: Product,
    variations: list[Variation],
    available: dict[int, int],
    locale: str,
    rated: str | None = None,
) -> disnake.Embed:
    total = sum(available.get(v.id, 0) for v in variations)
    embed = disnake.Embed(title=product.name, description=product.description or None, colour=BRAND)
    embed.add_field(t("storefront.panel.price", locale), price_range(variations), inline=True)
    stock = in_stock(total, locale) if total else t("storefront.panel.sold_out", locale)
    embed.add_field(t("storefront.panel.stock", locale), stock, inline=True)
    if rated:  # the average once the product has the store's minimum of ratings (issue 17)
        embed.add_field(t("ratings.panel.field", locale), rated, inline=True)
    if product.image_url:
        embed.set_image(url=product.image_url)
    return embed


def panel_components(
    product: Product, variations: list[Variation], available: dict[int, int], locale: str
) -> list[Any]:
    if len(variations) == 1:
        v = variations[0]
        sold_out = available.get(v.id, 0) == 0
        label = t("storefront.panel.sold_out" if sold_out else "storefront.panel.buy", locale)
        return [
            disnake.ui.Button(
                label=label,
                custom_id=f"vt:buy:{v.id}",
                emoji="🛒",
                style=disnake.ButtonStyle.success,
                disabled=sold_out,
            )
        ]
    options = []
    for v in variations[:MAX_SELECT]:
        count = available.get(v.id, 0)
        desc = in_stock(count, locale) if count else t("storefront.panel.sold_out", locale)
        options.append(
            disnake.SelectOption(
                label=f"{v.name} — {format_brl(v.price_cents)}"[:100],
                value=str(v.id),
                description=desc[:100],
            )
        )
    return [
        StringSelect(
            custom_id=f"vt:pick:{product.id}",
            options=options,
            placeholder=t("storefront.panel.choose", locale),
        )
    ]


def unavailable_embed(name: str, locale: str) -> disnake.Embed:
    return disnake.Embed(
        title=name,
        description=t("storefront.panel.unavailable", locale),
        colour=disnake.Colour.dark_grey(),
    )


def card_embed(
    product: Product, variation: Variation, q: Quote, available: int, locale: str
) -> disnake.Embed:
    embed = disnake.Embed(
        title=t("storefront.card.title", locale),
        colour=BRAND,
        description=f"**{product.name}** — {variation.name}",
    )
    embed.add_field(t("storefront.card.unit_price", locale), format_brl(q.unit_price_cents))
    embed.add_field(t("storefront.card.quantity", locale), str(q.quantity))
    shown = str(available) if available < UNLIMITED else in_stock(available, locale)
    embed.add_field(t("storefront.card.available", locale), shown)
    if q.discount_cents:
        embed.add_field(
            t("storefront.card.coupon", locale),
            f"`{q.coupon_code}` −{format_brl(q.discount_cents)}",
        )
    embed.add_field(t("storefront.card.total", locale), f"**{format_brl(q.total_cents)}**")
    return embed


def card_components(variation_id: int, q: Quote, max_quantity: int, locale: str) -> list[Any]:
    code = q.coupon_code or ""
    options = [
        disnake.SelectOption(label=str(n), value=str(n), default=n == q.quantity)
        for n in range(1, max(1, min(max_quantity, MAX_SELECT)) + 1)
    ]
    return [
        disnake.ui.ActionRow(
            StringSelect(
                custom_id=f"vt:qty:{variation_id}:{code}",
                options=options,
                placeholder=t("storefront.card.quantity", locale),
            )
        ),
        disnake.ui.ActionRow(
            disnake.ui.Button(
                label=t("storefront.card.confirm", locale),
                emoji="✅",
                custom_id=f"vt:ok:{variation_id}:{q.quantity}:{code}",
                style=disnake.ButtonStyle.success,
            ),
            disnake.ui.Button(
                label=t("storefront.card.add_coupon", locale),
                emoji="🏷️",
                custom_id=f"vt:cpn:{variation_id}:{q.quantity}",
                style=disnake.ButtonStyle.secondary,
            ),
            disnake.ui.Button(
                label=t("storefront.card.abort", locale),
                custom_id="vt:abort",
                style=disnake.ButtonStyle.danger,
            ),
        ),
    ]


def pix_embed(
    order: Order, product_name: str, code: str, expires_at: datetime | None, locale: str
) -> disnake.Embed:
    embed = disnake.Embed(
        title=t("storefront.pix.title", locale, order=order.id),
        colour=BRAND,
        description=t("storefront.pix.instructions", locale),
    )
    embed.add_field(t("storefront.card.product", locale), f"{product_name} × {order.quantity}")
    embed.add_field(t("storefront.card.total", locale), f"**{format_brl(order.total_cents)}**")
    embed.add_field(
        t("storefront.pix.expires", locale), f"{_ts(expires_at, 't')} ({_ts(expires_at, 'R')})"
    )
    embed.add_field(t("storefront.pix.code", locale), f"```{code}```", inline=False)
    embed.set_image(url="attachment://pix.png")
    return embed


def pix_components(order_id: int, locale: str) -> list[Any]:
    return [
        disnake.ui.Button(
            label=t("storefront.pix.copy", locale),
            emoji="📋",
            custom_id=f"vt:pix:{order_id}",
            style=disnake.ButtonStyle.primary,
        ),
        disnake.ui.Button(
            label=t("paycheck.button", locale),
            emoji="🔄",
            custom_id=f"vt:chk:{order_id}",
            style=disnake.ButtonStyle.success,
        ),
        disnake.ui.Button(
            label=t("storefront.pix.cancel", locale),
            custom_id=f"vt:cancel:{order_id}",
            style=disnake.ButtonStyle.danger,
        ),
    ]


def delivery_embed(
    order: Order, product: str, variation: str, inline: str | None, locale: str
) -> disnake.Embed:
    embed = disnake.Embed(
        title=t("storefront.delivery.title", locale, order=order.id),
        colour=BRAND,
        description=t("storefront.delivery.thanks", locale),
    )
    embed.add_field(t("storefront.card.product", locale), f"{product} — {variation}")
    embed.add_field(t("storefront.card.quantity", locale), str(order.quantity))
    embed.add_field(t("storefront.card.total", locale), format_brl(order.total_cents))
    items = (
        f"```\n{inline}\n```" if inline is not None else t("storefront.delivery.in_file", locale)
    )
    embed.add_field(t("storefront.delivery.items", locale), items, inline=False)
    return embed


def sale_log_embed(order: Order, product: str, variation: str, path: str) -> disnake.Embed:
    loc = "pt-BR"  # the seller's log: the store's language
    embed = disnake.Embed(title=t("storefront.log.sale", loc, order=order.id), colour=BRAND)
    embed.add_field(t("storefront.card.product", loc), f"{product} — {variation}")
    embed.add_field(t("storefront.card.quantity", loc), str(order.quantity))
    embed.add_field(t("storefront.card.total", loc), format_brl(order.total_cents))
    embed.add_field(t("storefront.log.buyer", loc), f"<@{order.buyer_discord_id}>")
    embed.add_field(t("storefront.log.path", loc), path)
    return embed

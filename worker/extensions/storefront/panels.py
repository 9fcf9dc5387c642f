"""Product panels: a staff command posts one message per product; they keep themselves
current (price range, stock count or "esgotado") by polling a fingerprint of the catalog.

Where each panel lives is kept in Redis (`fleet.keys.panels`): losing it only means the
staff posts the panels again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction

from core.i18n import t
from fleet import keys
from shop.models import Product, Variation
from shop.ratings import panel_line
from shop.stock import counts
from worker.extensions.storefront import cart_views, views
from worker.extensions.storefront.common import (
    GUILD_ONLY,
    Storefront,
    is_staff,
    knob,
    locale_of,
    localized,
    reply,
    storefront_of,
)

log = logging.getLogger("worker.storefront.panels")


async def _content(
    product: Product | None, name: str, locale: str
) -> tuple[str, disnake.Embed, list]:
    """(fingerprint, embed, components) of a product's panel as it should look now."""
    if product is None or not product.active or product.deleted_at is not None:
        embed = views.unavailable_embed(name, locale)
        return "gone", embed, []
    variations = await Variation.filter(
        product_id=product.id, active=True, deleted_at__isnull=True
    ).order_by("price_cents", "id")
    if not variations:
        return "empty", views.unavailable_embed(product.name, locale), []
    available = {vid: c["available"] for vid, c in (await counts(v.id for v in variations)).items()}
    rated = await panel_line(product.tenant_id, product.id)  # issue 17: "★ 4.8 (12)"
    raw = json.dumps(
        [
            product.name,
            product.description,
            product.image_url,
            [(v.id, v.name, v.price_cents, available[v.id]) for v in variations],
            rated,
        ]
    )
    fp = hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()
    return (
        fp,
        views.panel_embed(product, variations, available, locale, rated),
        views.panel_components(product, variations, available, locale)
        + cart_views.panel_extra(product, variations, available, locale),  # issue 17
    )


async def post_panels(sf: Storefront, channel_id: int, locale: str, only: str | None = None) -> int:
    """Post (or edit in place) the panel of every active product; returns how many."""
    query = Product.filter(tenant_id=sf.ctx.tenant_id, active=True, deleted_at__isnull=True)
    if only:
        query = query.filter(name__iexact=only.strip())
    products = await query.order_by("id")
    redis = sf.ctx.redis
    stored = await redis.hgetall(keys.panels(sf.ctx.instance_id))
    channel = sf.bot.get_partial_messageable(channel_id, type=disnake.ChannelType.text)
    for product in products:
        fp, embed, components = await _content(product, product.name, locale)
        old = json.loads(stored[str(product.id)]) if str(product.id) in stored else None
        message_id = None
        if old and int(old["channel"]) == channel_id:
            try:
                await channel.get_partial_message(int(old["message"])).edit(
                    embed=embed, components=components
                )
                message_id = int(old["message"])
            except disnake.NotFound:
                message_id = None
        if message_id is None:
            message_id = (await channel.send(embed=embed, components=components)).id
        await redis.hset(
            keys.panels(sf.ctx.instance_id),
            str(product.id),
            json.dumps(
                {
                    "channel": channel_id,
                    "message": message_id,
                    "fp": fp,
                    "name": product.name,
                    "locale": locale,
                }
            ),
        )
    sf.panel_dirty.set()  # the refresher now has panels to keep up to date
    return len(products)


async def refresh_once(sf: Storefront) -> tuple[int, int]:
    """Edit the panels whose product changed since they were drawn; returns (panels, edited)."""
    key = keys.panels(sf.ctx.instance_id)
    edited = 0
    drawn = await sf.ctx.redis.hgetall(key)
    for pid, raw in drawn.items():
        entry = json.loads(raw)
        product = await Product.get_or_none(id=int(pid), tenant_id=sf.ctx.tenant_id)
        fp, embed, components = await _content(product, entry["name"], entry["locale"])
        if fp == entry["fp"]:
            continue
        message = sf.bot.get_partial_messageable(
            int(entry["channel"]), type=disnake.ChannelType.text
        ).get_partial_message(int(entry["message"]))
        try:
            await message.edit(embed=embed, components=components)
        except disnake.NotFound:
            await sf.ctx.redis.hdel(key, pid)  # the staff deleted the message
            continue
        except disnake.HTTPException as exc:
            log.warning("panel %s not refreshed: %s", pid, exc)
            continue
        await sf.ctx.redis.hset(key, pid, json.dumps(dict(entry, fp=fp)))
        edited += 1
    return len(drawn), edited


async def refresher(sf: Storefront) -> None:
    """Background task: refresh at once when this worker sold, restocked or posted a panel,
    else every VITRINE_PANEL_REFRESH_S seconds (portal edits are seen then). A bot with no
    panel drawn (most of them) only waits for its own posts: only this bot draws its panels,
    so nothing is polled for (an idle fleet of 2,000 made 8,000 reads a minute for this)."""
    every = knob("VITRINE_PANEL_REFRESH_S")
    drawn = 1  # a predecessor's panels are in Redis: look at least once
    while True:
        try:
            await asyncio.wait_for(sf.panel_dirty.wait(), every if drawn else None)
            await asyncio.sleep(0.5)  # let a burst of sales settle into one edit
        except TimeoutError:
            pass
        sf.panel_dirty.clear()
        try:
            drawn, _ = await refresh_once(sf)
        except Exception:  # noqa: BLE001 - a DB or Discord hiccup: next round
            drawn = 1
            log.exception("panel refresh failed")


@commands.slash_command(
    name=localized("painel", "panel"),
    contexts=GUILD_ONLY,
    default_member_permissions=disnake.Permissions(manage_guild=True),
    description=localized(
        "Publicar/atualizar o painel de produtos (equipe)",
        "Post or refresh the product panel (staff)",
    ),
)
async def painel(inter: ApplicationCommandInteraction, produto: str = "") -> None:
    sf = storefront_of(inter)

    async def work() -> None:
        locale = locale_of(inter)
        if not is_staff(inter):
            await reply(inter, t("storefront.staff.only", locale))
            return
        await inter.response.defer(ephemeral=True)
        store_locale = (await sf.tenant()).locale  # panels are public: the store's language
        count = await post_panels(sf, inter.channel_id, store_locale, produto or None)
        await inter.edit_original_response(t("storefront.panel.posted", locale, count=count))

    await sf.guarded(inter, work())


def setup(sf: Storefront) -> None:
    sf.bot.add_slash_command(painel)
    sf.bot.add_background_task(lambda: refresher(sf), "storefront-panels")

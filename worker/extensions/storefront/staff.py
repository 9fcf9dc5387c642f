"""Staff commands: stock count, add stock from a .txt attachment, today's sales."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction
from tortoise.functions import Count, Sum

from core.i18n import format_brl, t
from shop import inputs, stock
from shop.checkout import ProductUnavailable
from shop.errors import ShopError
from shop.models import Order, Product, Variation
from shop.states import PAID_ORDER_STATES
from worker.extensions.storefront import kind_messages, views
from worker.extensions.storefront.checkout_ui import find_product
from worker.extensions.storefront.common import (
    GUILD_ONLY,
    Storefront,
    is_staff,
    locale_of,
    localized,
    reply,
    storefront_of,
)

BRT = timezone(timedelta(hours=-3))  # Brasília; Brazil has had no DST since 2019
STAFF = disnake.Permissions(manage_guild=True)


async def stock_count(sf: Storefront, inter: ApplicationCommandInteraction) -> None:
    locale = locale_of(inter)
    variations = (
        await Variation.filter(
            tenant_id=sf.ctx.tenant_id, deleted_at__isnull=True, product__deleted_at__isnull=True
        )
        .prefetch_related("product")
        .order_by("product_id", "id")
    )
    numbers = await stock.counts(v.id for v in variations)
    lines = [
        t(
            "storefront.stock.line",
            locale,
            product=v.product.name,
            variation=v.name,
            **kind_messages.stock_figures(v, numbers[v.id]),  # other kinds: units (issue 16)
        )
        for v in variations
    ]
    embed = disnake.Embed(
        title=t("storefront.stock.title", locale),
        colour=views.BRAND,
        description=fit_lines(lines, locale) or t("storefront.stock.empty", locale),
    )
    await reply(inter, embed=embed)


EMBED_TEXT_MAX = 4000  # Discord refuses an embed description over 4096 characters


def fit_lines(lines: list[str], locale: str, limit: int = EMBED_TEXT_MAX) -> str:
    """As many whole lines as fit in one embed, then how many were left out."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = t("storefront.stock.more", locale, count=len(lines) - index)
        if size + len(line) + 1 + len(more) > limit:
            return "\n".join([*kept, more])
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


class StockFileRefused(ShopError):
    """The attachment cannot be imported; `message_key` says why (not .txt, too big...)."""

    code = "stock_file_refused"

    def __init__(self, message_key: str, **params: object) -> None:
        self.message_key = message_key
        super().__init__(f"stock file refused: {message_key}", **params)


class VariationNeeded(ProductUnavailable):
    """The product has several variations and `variacao` is empty or names none of them."""

    code = "variation_needed"
    message_key = "storefront.stock.variation_needed"


async def pick_variation(product: Product, name: str) -> Variation:
    """The variation named `name` (any case), or the only one when `name` is empty."""
    variations = await Variation.filter(product_id=product.id, deleted_at__isnull=True).order_by(
        "id"
    )
    if not variations:
        raise ProductUnavailable(f"product {product.id} has no variation")
    chosen = (
        [v for v in variations if v.name.lower() == name.strip().lower()] if name else variations
    )
    if len(chosen) != 1:
        raise VariationNeeded(
            f"variation {name!r} of {product.name} is ambiguous",
            product=product.name,
            variations=", ".join(v.name for v in variations),
        )
    return chosen[0]


async def add_stock_file(
    sf: Storefront,
    inter: ApplicationCommandInteraction,
    produto: str,
    arquivo: disnake.Attachment,
    variacao: str,
) -> None:
    locale = locale_of(inter)
    if not arquivo.filename.lower().endswith(".txt"):
        raise StockFileRefused("storefront.stock.not_txt")
    if arquivo.size > stock.MAX_UPLOAD_BYTES:
        raise StockFileRefused("storefront.stock.too_big")
    product = await find_product(sf.ctx.tenant_id, produto, paused_too=True)
    variation = await pick_variation(product, variacao)
    await inter.response.defer(ephemeral=True)
    raw = await arquivo.read()
    if len(raw) > stock.MAX_UPLOAD_BYTES:  # the size Discord announced is not the last word
        raise StockFileRefused("storefront.stock.too_big")
    try:  # utf-8-sig: Windows Notepad's BOM must not end up in the first item
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StockFileRefused("storefront.stock.not_utf8") from None
    try:
        result = await stock.add_stock(
            sf.vault,
            sf.ctx.tenant_id,
            variation.id,
            text,
            f"discord:{inter.author.id}",
            redis=sf.ctx.redis,
            hash_key=sf.ctx.settings.stock_hash_key,
        )
    except stock.TooManyLines:
        raise StockFileRefused(
            "storefront.stock.too_many_lines", maximum=stock.MAX_LINES_PER_ADD
        ) from None
    sf.panel_dirty.set()
    await inter.edit_original_response(stock_report(result, locale))


def stock_report(result: stock.AddResult, locale: str) -> str:
    text = t(
        "storefront.stock.added",
        locale,
        added=result.added,
        duplicates=len(result.duplicates),
        rejected=len(result.rejected),
    )
    if result.duplicates:
        shown = ", ".join(map(str, result.duplicates[:30]))
        text += "\n" + t("storefront.stock.duplicate_lines", locale, lines=shown)
    return text


async def sales_today(sf: Storefront, inter: ApplicationCommandInteraction) -> None:
    locale = locale_of(inter)
    start = datetime.now(BRT).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        await Order.filter(
            tenant_id=sf.ctx.tenant_id,
            status__in=PAID_ORDER_STATES,
            paid_at__gte=start.astimezone(UTC),
        )
        .group_by("product_id")
        .annotate(n=Count("id"), total=Sum("total_cents"))
        .values_list("product_id", "n", "total")
    )
    names = dict(await Product.filter(id__in=[r[0] for r in rows]).values_list("id", "name"))
    lines = [
        t(
            "storefront.sales.line",
            locale,
            product=names.get(pid, "?"),
            orders=n,
            total=format_brl(int(total or 0)),
        )
        for pid, n, total in rows
    ]
    count = sum(int(r[1]) for r in rows)
    amount = sum(int(r[2] or 0) for r in rows)
    embed = disnake.Embed(
        title=t("storefront.sales.title", locale),
        colour=views.BRAND,
        description="\n".join(lines) or t("storefront.sales.none", locale),
    )
    embed.add_field(t("storefront.sales.orders", locale), str(count))
    embed.add_field(t("storefront.card.total", locale), format_brl(amount))
    await reply(inter, embed=embed)


async def staff_only(inter: ApplicationCommandInteraction, work) -> None:
    if not is_staff(inter):
        work.close()
        await reply(inter, t("storefront.staff.only", locale_of(inter)))
        return
    await storefront_of(inter).guarded(inter, work)


@commands.slash_command(
    name=localized("estoque", "stock"),
    description=localized("Estoque por produto (equipe)", "Stock per product (staff)"),
    contexts=GUILD_ONLY,
    default_member_permissions=STAFF,
)
async def estoque(inter: ApplicationCommandInteraction) -> None:
    await staff_only(inter, stock_count(storefront_of(inter), inter))


@commands.slash_command(
    name=localized("estoque-adicionar", "stock-add"),
    contexts=GUILD_ONLY,
    default_member_permissions=STAFF,
    description=localized(
        "Adicionar estoque de um arquivo .txt, um item por linha",
        "Add stock from a .txt file, one item per line",
    ),
)
async def estoque_adicionar(
    inter: ApplicationCommandInteraction,
    produto: commands.String[str, 1, inputs.NAME_OPTION_MAX],
    arquivo: disnake.Attachment,
    variacao: commands.String[str, 0, inputs.NAME_OPTION_MAX] = "",
) -> None:
    await staff_only(inter, add_stock_file(storefront_of(inter), inter, produto, arquivo, variacao))


@commands.slash_command(
    name=localized("vendas-hoje", "sales-today"),
    description=localized("Vendas de hoje (equipe)", "Today's sales (staff)"),
    contexts=GUILD_ONLY,
    default_member_permissions=STAFF,
)
async def vendas_hoje(inter: ApplicationCommandInteraction) -> None:
    await staff_only(inter, sales_today(storefront_of(inter), inter))


def setup(sf: Storefront) -> None:
    for command in (estoque, estoque_adicionar, vendas_hoje):
        sf.bot.add_slash_command(command)

"""Buying: panel click → checkout card (quantity, coupon) → confirm → PIX; cancel."""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction, Interaction

from core.i18n import t
from shop import buyer_limits, checkout, inputs, pricing, qr
from shop.cart_checkout import cancel_cart
from shop.cart_lookup import payment_for_order
from shop.errors import InvalidStateChange
from shop.models import Order, Payment, Product, Variation
from shop.orders import cancel_order
from shop.payments.cancel import cancel_charge
from shop.payments.payment_check import check_payment
from shop.payments.payment_polling import PollBudget
from shop.states import OrderStatus
from worker.extensions.storefront import views
from worker.extensions.storefront.common import (
    GUILD_ONLY,
    Storefront,
    locale_of,
    localized,
    reply,
    storefront_of,
)

log = logging.getLogger("worker.storefront.checkout")


async def show_card(
    sf: Storefront,
    inter: Interaction,
    variation_id: int,
    quantity: int = 1,
    coupon: str | None = None,
    *,
    update: bool = False,
) -> None:
    """The checkout card for a variation (a new ephemeral message, or edit the card)."""
    locale = locale_of(inter)
    # Blocked (neutral answer) or too many unpaid orders: refuse before showing a card.
    await buyer_limits.precheck(sf.ctx.tenant_id, str(inter.author.id))
    offer, quote = await checkout.preview(sf.ctx.tenant_id, variation_id, quantity, coupon)
    embed = views.card_embed(offer.product, offer.variation, quote, offer.available, locale)
    components = views.card_components(variation_id, quote, offer.max_quantity, locale)
    if update:
        await inter.response.edit_message(embed=embed, components=components)
    else:
        await inter.response.send_message(embed=embed, components=components, ephemeral=True)


def _quantity(raw: object) -> int:
    """A quantity from a component: 1..HARD_MAX_QUANTITY (the product's cap is checked later)."""
    return inputs.parse_quantity(raw, hi=checkout.HARD_MAX_QUANTITY)


async def on_buy(sf: Storefront, inter: Any, args: list[str]) -> None:
    await show_card(sf, inter, inputs.parse_id(args[0]))


async def on_pick(sf: Storefront, inter: Any, args: list[str]) -> None:
    await show_card(sf, inter, inputs.parse_id(inter.values[0]))


async def on_quantity(sf: Storefront, inter: Any, args: list[str]) -> None:
    code = args[1] if len(args) > 1 else None
    await show_card(
        sf, inter, inputs.parse_id(args[0]), _quantity(inter.values[0]), code or None, update=True
    )


async def on_coupon_button(sf: Storefront, inter: Any, args: list[str]) -> None:
    locale = locale_of(inter)
    await inter.response.send_modal(
        title=t("storefront.coupon.title", locale),
        custom_id=f"vt:cpm:{args[0]}:{args[1]}",
        components=[
            disnake.ui.TextInput(
                label=t("storefront.coupon.label", locale),
                custom_id="code",
                max_length=40,
                min_length=1,
            )
        ],
    )


async def on_coupon_modal(sf: Storefront, inter: Any, args: list[str]) -> None:
    code = pricing.normalize_code(inter.text_values.get("code"))
    if code is None:
        raise pricing.CouponRejected("empty code", code="")
    await show_card(sf, inter, inputs.parse_id(args[0]), _quantity(args[1]), code, update=True)


async def on_abort(sf: Storefront, inter: Any, args: list[str]) -> None:
    await inter.response.edit_message(
        content=t("storefront.card.aborted", locale_of(inter)), embed=None, components=[]
    )


async def on_confirm(sf: Storefront, inter: Any, args: list[str]) -> None:
    """Create (once per card message) the order, its reservation and the PIX charge."""
    variation_id, quantity = inputs.parse_id(args[0]), _quantity(args[1])
    code = args[2] if len(args) > 2 and args[2] else None
    key = str(inter.message.id) if inter.message else str(inter.id)
    await inter.response.defer(with_message=True, ephemeral=True)
    async with sf.lock(f"checkout:{key}"):  # a double click waits for the first one
        order, payment = await checkout.checkout(
            sf.payments(),
            checkout.CheckoutRequest(
                tenant_id=sf.ctx.tenant_id,
                instance_id=sf.ctx.instance_id,
                variation_id=variation_id,
                quantity=quantity,
                buyer_id=str(inter.author.id),
                buyer_name=str(inter.author)[:100],
                key=key,
                guild_id=str(inter.guild_id) if inter.guild_id else None,
                channel_id=str(inter.channel_id),
                locale=locale_of(inter),
                coupon_code=code,
            ),
        )
    sf.panel_dirty.set()
    await send_pix(inter, order, payment)


async def send_pix(inter: Any, order: Order, payment: Payment) -> None:
    locale = locale_of(inter)
    product = await Product.get(id=order.product_id)
    embed = views.pix_embed(order, product.name, payment.qr_code, payment.expires_at, locale)
    png = qr.pix_png(payment.qr_code)
    await inter.edit_original_response(
        embed=embed,
        file=disnake.File(io.BytesIO(png), "pix.png"),
        components=views.pix_components(order.id, locale),
    )


async def _own_order(sf: Storefront, inter: Any, order_id: int) -> Order:
    order = await Order.get_or_none(
        id=order_id, tenant_id=sf.ctx.tenant_id, buyer_discord_id=str(inter.author.id)
    )
    if order is None:
        raise checkout.ProductUnavailable(f"order {order_id} is not this buyer's")
    return order


async def on_copy_code(sf: Storefront, inter: Any, args: list[str]) -> None:
    """The bare copia-e-cola string, alone in a message: easy to copy on a phone."""
    order = await _own_order(sf, inter, inputs.parse_id(args[0]))
    payment = await payment_for_order(order.id)  # a cart line: its cart's one PIX
    await reply(inter, payment.qr_code if payment and payment.qr_code else "-")


async def on_check_payment(sf: Storefront, inter: Any, args: list[str]) -> None:
    """ "Já paguei / Verificar pagamento": ask Mercado Pago now (rate-limited per order)."""
    locale = locale_of(inter)
    order_id = inputs.parse_id(args[0] if args else None)
    await inter.response.defer(with_message=True, ephemeral=True)
    budget = PollBudget(sf.ctx.redis, sf.ctx.settings.mp_poll_budget_per_min)
    outcome = await check_payment(
        sf.payments(), sf.ctx.tenant_id, order_id, str(inter.author.id), budget
    )
    await reply(
        inter, t(f"paycheck.{outcome.kind}", locale, order=order_id, seconds=outcome.wait_s)
    )


async def on_cancel(sf: Storefront, inter: Any, args: list[str]) -> None:
    locale = locale_of(inter)
    order = await _own_order(sf, inter, inputs.parse_id(args[0]))
    if order.status != OrderStatus.PENDING:
        raise InvalidStateChange(f"order {order.id} is {order.status}")
    if order.cart_id is not None:
        # One PIX pays the whole cart: giving up one line gives up the cart, never a PIX
        # still payable for the full total with one line closed.
        await cancel_cart(order.cart_id, f"buyer:{inter.author.id}")
    else:
        await cancel_order(order.id, f"buyer:{inter.author.id}")
    sf.panel_dirty.set()
    await inter.response.edit_message(
        content=t("storefront.pix.cancelled", locale, order=order.id),
        embed=None,
        components=[],
        attachments=[],
    )
    try:  # the PIX code can no longer be paid (best effort: it also expires on its own)
        await cancel_charge(sf.payments(), order.id, f"buyer:{inter.author.id}")
    except Exception:  # noqa: BLE001 - the order is cancelled either way
        log.exception("order %s: cancelling the PIX at the provider failed", order.id)


async def find_product(tenant_id: int, name: str, *, paused_too: bool = False) -> Product:
    """A product of the store by id or (case-insensitive) name; `ProductUnavailable`.
    `paused_too`: also a paused (inactive) one — staff restock before re-opening sales."""
    query = Product.filter(tenant_id=tenant_id, deleted_at__isnull=True)
    if not paused_too:
        query = query.filter(active=True)
    if len(name) > inputs.NAME_OPTION_MAX:  # Discord enforces it too; this is the backstop
        raise checkout.ProductUnavailable(f"product name of {len(name)} characters")
    found = await query.filter(name__iexact=name.strip()).first()
    if found is None:
        try:
            product_id = inputs.parse_id(name)
        except inputs.InvalidInput:
            product_id = None
        if product_id is not None:
            found = await query.filter(id=product_id).first()
    if found is None:
        raise checkout.ProductUnavailable(f"no product {name!r}")
    return found


async def buy_command(
    sf: Storefront, inter: ApplicationCommandInteraction, produto: str, quantidade: int = 1
) -> None:
    product = await find_product(sf.ctx.tenant_id, produto)
    variations = await Variation.filter(
        product_id=product.id, active=True, deleted_at__isnull=True
    ).order_by("price_cents", "id")
    if not variations:
        raise checkout.ProductUnavailable(f"product {product.id} has no variation")
    if len(variations) == 1:
        await show_card(sf, inter, variations[0].id, quantidade)
        return
    offer = await checkout.sellable(sf.ctx.tenant_id, variations[0].id)
    checkout.check_quantity(offer, quantidade)
    from shop.stock import counts

    numbers = await counts(v.id for v in variations)
    available = {vid: c["available"] for vid, c in numbers.items()}
    await reply(
        inter,
        embed=views.panel_embed(product, variations, available, locale_of(inter)),
        components=views.panel_components(product, variations, available, locale_of(inter)),
    )


@commands.slash_command(
    name=localized("comprar", "buy"),
    description=localized("Comprar um produto", "Buy a product"),
    contexts=GUILD_ONLY,
)
async def comprar(
    inter: ApplicationCommandInteraction,
    produto: commands.String[str, 1, inputs.NAME_OPTION_MAX],
    quantidade: commands.Range[int, 1, checkout.HARD_MAX_QUANTITY] = 1,
) -> None:
    sf = storefront_of(inter)
    await sf.guarded(inter, buy_command(sf, inter, produto, quantidade))


def _bound(
    sf: Storefront, handler: Callable[[Storefront, Any, list[str]], Awaitable[None]]
) -> Callable[[Any, list[str]], Awaitable[None]]:
    return lambda inter, args: handler(sf, inter, args)


def setup(sf: Storefront) -> None:
    handlers: dict[str, Callable[[Storefront, Any, list[str]], Awaitable[None]]] = {
        "buy": on_buy,
        "pick": on_pick,
        "qty": on_quantity,
        "cpn": on_coupon_button,
        "cpm": on_coupon_modal,
        "abort": on_abort,
        "ok": on_confirm,
        "pix": on_copy_code,
        "chk": on_check_payment,
        "cancel": on_cancel,
    }
    for action, handler in handlers.items():
        sf.route(action, _bound(sf, handler))
    sf.bot.add_slash_command(comprar)

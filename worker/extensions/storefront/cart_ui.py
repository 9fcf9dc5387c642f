"""The cart in Discord (issue 17): "Adicionar ao carrinho" on the panels, `/carrinho` and
"Ver carrinho" (lines, each line's problem before paying, totals, remove, coupon), "Pagar com
PIX" (one PIX for the cart, the PIX card of `checkout_ui` with cancel = cancel the cart).

Everything commercial is `shop.cart` / `shop.cart_checkout`; a cart message is ephemeral and
its buttons carry the owner's id, checked on every press: nobody else can act on a cart.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import disnake
from disnake.ext import commands
from disnake.interactions import ApplicationCommandInteraction

from core.i18n import t
from shop import cart, checkout, inputs, pricing, qr
from shop.cart_checkout import CartCheckoutRequest, cancel_cart, checkout_cart
from shop.cart_summary import cart_summary
from shop.errors import InvalidStateChange, ShopError
from shop.models import Cart, Payment
from shop.payments.cancel import cancel_charge
from shop.states import OrderStatus
from worker.extensions.storefront import cart_views
from worker.extensions.storefront.common import (
    GUILD_ONLY,
    Storefront,
    locale_of,
    localized,
    storefront_of,
)

log = logging.getLogger("worker.storefront.cart")


class NotCartOwner(ShopError):
    """A button of someone else's cart (a forwarded or replayed custom id)."""

    code = "not_cart_owner"
    message_key = "cartui.not_yours"


class CartNotReady(ShopError):
    """Paying refused: these lines cannot be reserved now (shown before anything is charged)."""

    code = "cart_not_ready"
    message_key = "cartui.fix_first"


def _owner(inter: Any, raw: str) -> str:
    """The cart owner named in a custom id, who must be the one pressing."""
    buyer = str(inter.author.id)
    if raw != buyer:
        raise NotCartOwner(f"{buyer} pressed {raw}'s cart")
    return buyer


def _code(args: list[str], start: int) -> str | None:
    """The coupon carried at the end of a custom id (it may itself hold a colon)."""
    return pricing.normalize_code(":".join(args[start:]))


async def show_cart(
    sf: Storefront, inter: Any, code: str | None = None, *, update: bool = False
) -> None:
    """The buyer's cart, priced now with `code`: a new ephemeral message or edit this one."""
    locale, buyer = locale_of(inter), str(inter.author.id)
    view = await cart.view(sf.ctx.tenant_id, buyer, code)
    embed = cart_views.cart_embed(view, locale, code)
    components = cart_views.cart_components(view, buyer, code, locale)
    if update:
        await inter.response.edit_message(embed=embed, components=components)
    else:
        await inter.response.send_message(embed=embed, components=components, ephemeral=True)


async def _ask_quantity(sf: Storefront, inter: Any, variation_id: int) -> None:
    offer = await checkout.sellable(sf.ctx.tenant_id, variation_id)  # ProductUnavailable
    maximum = max(1, offer.max_quantity)
    await inter.response.send_modal(
        **cart_views.quantity_modal(variation_id, maximum, locale_of(inter))
    )


async def on_add(sf: Storefront, inter: Any, args: list[str]) -> None:
    await _ask_quantity(sf, inter, inputs.parse_id(args[0] if args else None))


async def on_pick(sf: Storefront, inter: Any, args: list[str]) -> None:
    await _ask_quantity(sf, inter, inputs.parse_id(inter.values[0] if inter.values else None))


async def on_add_modal(sf: Storefront, inter: Any, args: list[str]) -> None:
    """Quantity typed: put the line in the cart and show the cart (a new message: the modal
    came from the public panel, which must stay as it is)."""
    variation_id = inputs.parse_id(args[0] if args else None)
    quantity = inputs.parse_quantity(inter.text_values.get("qty"), hi=checkout.HARD_MAX_QUANTITY)
    await cart.add_line(sf.ctx.tenant_id, str(inter.author.id), variation_id, quantity)
    await show_cart(sf, inter)


async def on_view(sf: Storefront, inter: Any, args: list[str]) -> None:
    await show_cart(sf, inter)


async def on_remove(sf: Storefront, inter: Any, args: list[str]) -> None:
    buyer = _owner(inter, args[0])
    await cart.remove_line(sf.ctx.tenant_id, buyer, inputs.parse_id(args[1]))
    await show_cart(sf, inter, _code(args, 2), update=True)


async def on_clear(sf: Storefront, inter: Any, args: list[str]) -> None:
    await cart.clear(sf.ctx.tenant_id, _owner(inter, args[0]))
    await inter.response.edit_message(
        content=t("cartui.cleared", locale_of(inter)), embed=None, components=[]
    )


async def on_coupon_button(sf: Storefront, inter: Any, args: list[str]) -> None:
    buyer = _owner(inter, args[0])
    await inter.response.send_modal(**cart_views.coupon_modal(buyer, locale_of(inter)))


async def on_coupon_modal(sf: Storefront, inter: Any, args: list[str]) -> None:
    _owner(inter, args[0])
    code = pricing.normalize_code(inter.text_values.get("code"))
    if code is None:
        raise pricing.CouponRejected("empty code", code="")
    await show_cart(sf, inter, code, update=True)


async def _refuse_unready(sf: Storefront, buyer: str, code: str | None, locale: str) -> None:
    """Before a first payment: name every line that could not be reserved now."""
    view = await cart.view(sf.ctx.tenant_id, buyer, code)
    bad = [
        f"{ln.product_name} — {ln.variation_name} ({cart_views.problem_text(ln, locale)})"
        for ln in view.lines
        if ln.problem
    ]
    if bad:
        raise CartNotReady(f"{len(bad)} lines", lines="; ".join(bad))


async def on_pay(sf: Storefront, inter: Any, args: list[str]) -> None:
    """Create (once per cart message) the cart's orders, reservations and one PIX charge."""
    buyer = _owner(inter, args[0])
    code, locale = _code(args, 1), locale_of(inter)
    key = str(inter.message.id) if inter.message else str(inter.id)
    await inter.response.defer(with_message=True, ephemeral=True)
    async with sf.lock(f"checkout:{key}"):  # a double click waits for the first one
        if not await Cart.exists(interaction_id=key, tenant_id=sf.ctx.tenant_id):
            await _refuse_unready(sf, buyer, code, locale)
        paid_cart, payment = await checkout_cart(
            sf.payments(),
            CartCheckoutRequest(
                tenant_id=sf.ctx.tenant_id,
                instance_id=sf.ctx.instance_id,
                buyer_id=buyer,
                buyer_name=str(inter.author)[:100],
                key=key,
                guild_id=str(inter.guild_id) if inter.guild_id else None,
                channel_id=str(inter.channel_id),
                locale=locale,
                coupon_code=code,
            ),
        )
    sf.panel_dirty.set()
    await send_cart_pix(inter, paid_cart, payment)


async def send_cart_pix(inter: Any, paid_cart: Cart, payment: Payment) -> None:
    locale = locale_of(inter)
    summary = await cart_summary(paid_cart.id, paid_cart.tenant_id)
    if summary is None:  # just created in this store: cannot happen short of a deletion
        raise InvalidStateChange(f"cart {paid_cart.id} vanished")
    embed = cart_views.cart_pix_embed(summary, payment.qr_code, payment.expires_at, locale)
    await inter.edit_original_response(
        embed=embed,
        file=disnake.File(io.BytesIO(qr.pix_png(payment.qr_code)), "pix.png"),
        components=cart_views.cart_pix_components(summary, locale),
    )


async def on_cancel(sf: Storefront, inter: Any, args: list[str]) -> None:
    """Cancel an unpaid cart (every line's reservation released), then its PIX code."""
    locale, buyer = locale_of(inter), str(inter.author.id)
    summary = await cart_summary(inputs.parse_id(args[0] if args else None), sf.ctx.tenant_id)
    if summary is None or summary.buyer_discord_id != buyer:
        raise NotCartOwner(f"{buyer} cancelling cart {args[0] if args else '?'}")
    if any(ln.status != OrderStatus.PENDING for ln in summary.lines):
        raise InvalidStateChange(f"cart {summary.cart_id} is not pending")
    actor = f"buyer:{buyer}"
    await cancel_cart(summary.cart_id, actor)
    sf.panel_dirty.set()
    await inter.response.edit_message(
        content=t("cartui.cancelled", locale, cart=summary.cart_id),
        embed=None,
        components=[],
        attachments=[],
    )
    if summary.lead_order_id is None:
        return
    try:  # the PIX code can no longer be paid (best effort: it also expires on its own)
        await cancel_charge(sf.payments(), summary.lead_order_id, actor)
    except Exception:  # noqa: BLE001 - the cart is cancelled either way
        log.exception("cart %s: cancelling the PIX at the provider failed", summary.cart_id)


HANDLERS: dict[str, Callable[[Storefront, Any, list[str]], Awaitable[None]]] = {
    "add": on_add,
    "pick": on_pick,
    "addm": on_add_modal,
    "view": on_view,
    "rm": on_remove,
    "clr": on_clear,
    "cpn": on_coupon_button,
    "cpm": on_coupon_modal,
    "pay": on_pay,
    "cx": on_cancel,
}


async def on_cart(sf: Storefront, inter: Any, args: list[str]) -> None:
    """`vt:cart:<action>:<args>`; an unknown action is ignored like an unknown route."""
    handler = HANDLERS.get(args[0]) if args else None
    if handler is not None:
        await handler(sf, inter, args[1:])


@commands.slash_command(
    name=localized("carrinho", "cart"),
    description=localized("Ver seu carrinho nesta loja", "See your cart in this store"),
    contexts=GUILD_ONLY,
)
async def carrinho(inter: ApplicationCommandInteraction) -> None:
    sf = storefront_of(inter)
    await sf.guarded(inter, show_cart(sf, inter))


def setup(sf: Storefront) -> None:
    sf.route("cart", lambda inter, args: on_cart(sf, inter, args))
    sf.bot.add_slash_command(carrinho)

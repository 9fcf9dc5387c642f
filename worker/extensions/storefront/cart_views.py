"""What the buyer sees of the cart (issue 17): the panel's cart buttons, the cart message and
the cart's PIX card. Pure builders (no I/O).

Custom ids: `vt:cart:<action>:<args>`; those on a buyer's own cart message carry the owner's
Discord id (checked on every press) and the coupon typed, so a worker restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import disnake
from disnake.ui.select import StringSelect

from core.i18n import format_brl, t
from shop.cart import CartView, CartViewLine
from shop.cart_summary import CartSummary, LinePosition
from shop.models import Order, Product, Variation
from worker.extensions.storefront import views

MAX_REMOVE_BUTTONS = 20  # four rows of five; the fifth row holds pay / coupon / clear


def panel_extra(
    product: Product, variations: list[Variation], available: dict[int, int], locale: str
) -> list[Any]:
    """The panel's cart components, after "Comprar": add (a button, or a select when the
    product has several variations) and "Ver carrinho"."""
    extra: list[Any] = []
    if len(variations) == 1:
        v = variations[0]
        extra.append(
            disnake.ui.Button(
                label=t("cartui.panel.add", locale),
                emoji="➕",
                custom_id=f"vt:cart:add:{v.id}",
                style=disnake.ButtonStyle.primary,
                disabled=available.get(v.id, 0) == 0,
            )
        )
    else:
        options = [
            disnake.SelectOption(
                label=f"{v.name} — {format_brl(v.price_cents)}"[:100], value=str(v.id)
            )
            for v in variations[: views.MAX_SELECT]
            if available.get(v.id, 0) > 0
        ]
        if options:
            extra.append(
                StringSelect(
                    custom_id=f"vt:cart:pick:{product.id}",
                    options=options,
                    placeholder=t("cartui.panel.add_pick", locale),
                )
            )
    extra.append(
        disnake.ui.Button(
            label=t("cartui.panel.view", locale),
            emoji="🛍️",
            custom_id="vt:cart:view",
            style=disnake.ButtonStyle.secondary,
        )
    )
    return extra


def quantity_modal(variation_id: int, maximum: int, locale: str) -> dict[str, Any]:
    """Keyword arguments of `send_modal` asking how many to put in the cart."""
    return {
        "title": t("cartui.qty.title", locale),
        "custom_id": f"vt:cart:addm:{variation_id}",
        "components": [
            disnake.ui.TextInput(
                label=t("cartui.qty.label", locale, maximum=maximum)[:45],
                custom_id="qty",
                value="1",
                min_length=1,
                max_length=3,
            )
        ],
    }


def problem_text(line: CartViewLine, locale: str) -> str:
    return t(f"cartui.problem.{line.problem}", locale, available=line.available)


def _line(n: int, line: CartViewLine, locale: str) -> str:
    text = t(
        "cartui.line",
        locale,
        n=n,
        product=line.product_name,
        variation=line.variation_name,
        quantity=line.quantity,
        total=format_brl(line.line_total_cents),
    )
    if line.problem:
        text += f"\n   ⚠️ {problem_text(line, locale)}"
    return text


def cart_embed(cart: CartView, locale: str, coupon_tried: str | None = None) -> disnake.Embed:
    embed = disnake.Embed(title=t("cartui.title", locale), colour=views.BRAND)
    if cart.empty:
        embed.description = t("cartui.empty", locale)
        return embed
    embed.description = "\n".join(_line(n, ln, locale) for n, ln in enumerate(cart.lines, 1))
    embed.add_field(t("cartui.subtotal", locale), format_brl(cart.subtotal_cents))
    if cart.coupon_code:
        embed.add_field(
            t("cartui.coupon", locale),
            f"`{cart.coupon_code}` −{format_brl(cart.discount_cents)}",
        )
    elif coupon_tried and cart.coupon_exc is not None:
        reason = cart.coupon_message(locale)
        refused = t("cartui.coupon_refused", locale, code=coupon_tried, reason=reason)
        embed.add_field(t("cartui.coupon", locale), refused)
    embed.add_field(t("cartui.total", locale), f"**{format_brl(cart.total_cents)}**")
    return embed


def cart_components(cart: CartView, owner: str, code: str | None, locale: str) -> list[Any]:
    """Remove buttons (one per line, numbered as in the embed), then pay / coupon / clear."""
    if cart.empty:
        return []
    kept = cart.coupon_code or ""  # only a coupon that applies travels on to the payment
    rows: list[Any] = []
    buttons = [
        disnake.ui.Button(
            label=t("cartui.remove", locale, n=n),
            custom_id=f"vt:cart:rm:{owner}:{line.variation_id}:{kept}",
            style=disnake.ButtonStyle.secondary,
        )
        for n, line in enumerate(cart.lines[:MAX_REMOVE_BUTTONS], 1)
    ]
    for start in range(0, len(buttons), 5):
        rows.append(disnake.ui.ActionRow(*buttons[start : start + 5]))
    rows.append(
        disnake.ui.ActionRow(
            disnake.ui.Button(
                label=t("cartui.pay", locale),
                emoji="💠",
                custom_id=f"vt:cart:pay:{owner}:{kept}",
                style=disnake.ButtonStyle.success,
            ),
            disnake.ui.Button(
                label=t("cartui.coupon_button", locale),
                emoji="🏷️",
                custom_id=f"vt:cart:cpn:{owner}",
                style=disnake.ButtonStyle.secondary,
            ),
            disnake.ui.Button(
                label=t("cartui.clear", locale),
                custom_id=f"vt:cart:clr:{owner}",
                style=disnake.ButtonStyle.danger,
            ),
        )
    )
    return rows


def coupon_modal(owner: str, locale: str) -> dict[str, Any]:
    return {
        "title": t("storefront.coupon.title", locale),
        "custom_id": f"vt:cart:cpm:{owner}",
        "components": [
            disnake.ui.TextInput(
                label=t("storefront.coupon.label", locale),
                custom_id="code",
                max_length=40,
                min_length=1,
            )
        ],
    }


def cart_pix_embed(
    cart: CartSummary, code: str, expires_at: datetime | None, locale: str
) -> disnake.Embed:
    embed = disnake.Embed(
        title=t("cartui.pix.title", locale, cart=cart.cart_id),
        colour=views.BRAND,
        description=t("storefront.pix.instructions", locale),
    )
    lines = "\n".join(
        f"{ln.index}. {ln.product_name} — {ln.variation_name} × {ln.quantity} "
        f"({format_brl(ln.total_cents)}) · #{ln.order_id}"
        for ln in cart.lines
    )
    embed.add_field(t("cartui.pix.lines", locale), lines[:1024] or "-", inline=False)
    if cart.discount_cents:
        embed.add_field(
            t("cartui.coupon", locale),
            f"`{cart.coupon_code or ''}` −{format_brl(cart.discount_cents)}",
        )
    embed.add_field(t("cartui.total", locale), f"**{format_brl(cart.total_cents)}**")
    embed.add_field(
        t("storefront.pix.expires", locale),
        f"{views._ts(expires_at, 't')} ({views._ts(expires_at, 'R')})",
    )
    embed.add_field(t("storefront.pix.code", locale), f"```{code}```", inline=False)
    embed.set_image(url="attachment://pix.png")
    return embed


def cart_pix_components(cart: CartSummary, locale: str) -> list[Any]:
    """The PIX card's buttons: copy and "Já paguei" act on the lead line (it carries the
    cart's payment), cancel cancels the whole cart."""
    lead = cart.lead_order_id
    components = views.pix_components(lead or 0, locale)
    return [
        *components[:2],
        disnake.ui.Button(
            label=t("storefront.pix.cancel", locale),
            custom_id=f"vt:cart:cx:{cart.cart_id}",
            style=disnake.ButtonStyle.danger,
        ),
    ]


def add_cart_field(embed: disnake.Embed, pos: LinePosition | None, locale: str) -> None:
    """On a cart line's sales log entry: "Carrinho #N, linha i/k"."""
    if pos is not None:
        text = t("cartui.log.line", locale, cart=pos.cart_id, index=pos.index, count=pos.count)
        embed.add_field(t("cartui.log.field", locale), text)


def grouped_lines(
    orders: list[Order],
    pos: dict[int, LinePosition],
    line_of: Callable[[Order], str],
    locale: str,
) -> list[str]:
    """`/meus-pedidos`: each order's line, the lines of one cart together under one heading
    (where the cart's newest line is), in line order."""
    out: list[str] = []
    shown: set[int] = set()
    for order in orders:
        here = pos.get(order.id)
        if here is None:
            out.append(line_of(order))
            continue
        if here.cart_id in shown:
            continue
        shown.add(here.cart_id)
        total = format_brl(here.cart_total_cents)
        out.append(t("cartui.orders.heading", locale, cart=here.cart_id, total=total))
        members = [o for o in orders if (p := pos.get(o.id)) and p.cart_id == here.cart_id]
        members.sort(key=lambda o: pos[o.id].index)
        out.extend(f"\u2003{line_of(o)}" for o in members)
    return out

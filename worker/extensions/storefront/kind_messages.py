"""The delivery message of each product kind (issue 16): embed and attachment.

STOCK keeps the first wave's message (items inline in a code block, or `pedido-<id>.txt`).
SHARED shows its text as written (a link stays clickable), or as a `.txt` when long. FILE
attaches the seller's file under its own name. ROLE_ONLY says the access is granted. MANUAL
carries the staff's note. Used by the delivery job and by the re-send of `/meus-pedidos`.
"""

from __future__ import annotations

import disnake

from core.i18n import t
from shop import delivery, kinds
from shop.models import Order, ProductKind, Variation
from worker.extensions.storefront import views

K = ProductKind
FIELD_MAX = 1024  # Discord refuses an embed field value over 1024 characters


def delivery_message(
    order: Order, prepared: delivery.Prepared, locale: str
) -> tuple[disnake.Embed, tuple[str, bytes] | None]:
    """(embed, attachment) of the order's delivery, by the variation's kind."""
    product, variation = prepared.product_name, prepared.variation_name
    if prepared.kind == K.STOCK:
        inline, blob = delivery.render_items(prepared.items)
        embed = views.delivery_embed(order, product, variation, inline, locale)
        return embed, ((f"pedido-{order.id}.txt", blob) if blob else None)
    text = "\n".join(prepared.items)
    attachment = prepared.attachment
    if prepared.kind == K.FILE:
        value = t("kinds.delivery.file", locale, name=attachment[0] if attachment else "?")
    elif prepared.kind == K.ROLE_ONLY:
        value = t("kinds.delivery.role_only", locale)
    elif len(text) <= FIELD_MAX and "```" not in text:
        value = text
    else:  # long shared text or note: whole, in a file
        value = t("storefront.delivery.in_file", locale)
        attachment = (f"pedido-{order.id}.txt", (text + "\n").encode("utf-8"))
    embed = views.delivery_embed(order, product, variation, None, locale)
    label = "kinds.delivery.note" if prepared.kind == K.MANUAL else "storefront.delivery.items"
    embed.set_field_at(len(embed.fields) - 1, t(label, locale), value, inline=False)
    return embed, attachment


def stock_figures(variation: Variation, counts: dict[str, int]) -> dict[str, int | str]:
    """The `/estoque` figures of a variation: its stock counts, or for another kind the units
    left under its cap ("∞" without one) and the units sold (`shop.kinds`)."""
    if variation.kind == K.STOCK:
        return dict(counts)
    left = kinds.units_left(variation)
    return {
        **counts,
        "available": "∞" if left >= kinds.UNLIMITED else left,
        "sold": variation.sold_count,
    }

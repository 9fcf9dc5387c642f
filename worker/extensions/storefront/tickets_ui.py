"""Ticket embeds and components (pure builders, no I/O). Custom ids:
`vt:tko:<order>` (the buyer's "Preciso de ajuda" button), `vt:tkos` (the same, as a select in
`/meus-pedidos`), `vt:tk:<action>:<ticket>` (the staff's buttons) and `vt:tkr:<ticket>` (which
item to replace, when the order has several)."""

from __future__ import annotations

from typing import Any

import disnake
from disnake.ui.select import StringSelect

from core.i18n import format_brl, t
from shop.models import Order
from shop.states import PAID_ORDER_STATES, OrderStatus
from shop.ticket_actions import Summary
from worker.extensions.storefront.views import BRAND, MAX_SELECT

STAFF_ACTIONS = ("resend", "replace", "refund", "close")
_STYLE = {
    "resend": disnake.ButtonStyle.primary,
    "replace": disnake.ButtonStyle.secondary,
    "refund": disnake.ButtonStyle.danger,
    "close": disnake.ButtonStyle.secondary,
}


def help_row(order_id: int, locale: str) -> disnake.ui.ActionRow:
    """The delivery DM's "Preciso de ajuda" button."""
    return disnake.ui.ActionRow(
        disnake.ui.Button(
            label=t("tickets.help", locale),
            emoji="🆘",
            custom_id=f"vt:tko:{order_id}",
            style=disnake.ButtonStyle.secondary,
        )
    )


def help_select(
    orders: list[Order], names: dict[int, str], locale: str
) -> StringSelect[Any] | None:
    """`/meus-pedidos`: pick the paid order to get help with (None: no paid order)."""
    orders = [o for o in orders if OrderStatus(o.status) in PAID_ORDER_STATES]
    if not orders:
        return None
    return StringSelect(
        custom_id="vt:tkos",
        placeholder=t("tickets.help_pick", locale),
        options=[
            disnake.SelectOption(
                label=f"#{o.id} — {names.get(o.product_id, '?')}"[:100], value=str(o.id)
            )
            for o in orders[:MAX_SELECT]
        ],
    )


def staff_buttons(ticket_id: int, locale: str) -> list[Any]:
    return [
        disnake.ui.Button(
            label=t(f"tickets.action.{action}", locale),
            custom_id=f"vt:tk:{action}:{ticket_id}",
            style=_STYLE[action],
        )
        for action in STAFF_ACTIONS
    ]


def confirm_refund(ticket_id: int, total_cents: int, locale: str) -> list[Any]:
    return [
        disnake.ui.Button(
            label=t("tickets.refund_confirm", locale, total=format_brl(total_cents)),
            custom_id=f"vt:tk:refund_ok:{ticket_id}",
            style=disnake.ButtonStyle.danger,
        )
    ]


def replace_select(ticket_id: int, items: list[tuple[int, str]], locale: str) -> StringSelect[Any]:
    return StringSelect(
        custom_id=f"vt:tkr:{ticket_id}",
        placeholder=t("tickets.replace_pick", locale),
        options=[
            disnake.SelectOption(label=f"{n}. {masked}"[:100], value=str(item_id))
            for n, (item_id, masked) in enumerate(items[:MAX_SELECT], start=1)
        ],
    )


def summary_embed(s: Summary, ticket_id: int, locale: str) -> disnake.Embed:
    """The order as the staff and the buyer see it in the ticket: items masked."""
    order = s.order
    embed = disnake.Embed(
        title=t("tickets.title", locale, ticket=ticket_id, order=order.id), colour=BRAND
    )
    embed.add_field(t("storefront.card.product", locale), f"{s.product} — {s.variation}")
    embed.add_field(t("storefront.card.quantity", locale), str(order.quantity))
    embed.add_field(t("storefront.card.total", locale), format_brl(order.total_cents))
    paid = f"<t:{int(s.paid_at.timestamp())}:f>" if s.paid_at else "-"
    embed.add_field(t("tickets.paid_at", locale), paid)
    embed.add_field(t("tickets.status", locale), t(f"storefront.status.{order.status}", locale))
    delivered = "\n".join(f"`{masked}`" for _, masked in s.items[:20]) or "-"
    embed.add_field(t("tickets.delivered", locale), delivered, inline=False)
    embed.set_footer(text=t("tickets.masked", locale))
    return embed

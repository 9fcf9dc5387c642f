"""The buyer's side of ratings (issue 17): the star buttons of the ask DM (`vt:rate:<order>:
<stars>`, sent by the reconciler's `shop.rating_relay`) open a modal for an optional comment
(`vt:rtm:<order>:<stars>`); submitting it gives or edits the rating (`shop.ratings`).

Custom ids come from the client, so both steps check that the presser is the order's buyer
and the order is this store's; a forged id for someone else's order is refused.
"""

from __future__ import annotations

from typing import Any

import disnake

from core.i18n import t
from shop import inputs, ratings
from shop.models.ratings import COMMENT_MAX
from worker.extensions.storefront.common import Storefront, locale_of, reply

COMMENT_FIELD = "comment"


def _target(args: list[str]) -> tuple[int, int]:
    """(order id, stars) from a custom id's arguments, bounded before use."""
    if len(args) != 2:
        raise ratings.InvalidRating(f"bad rating custom id {args!r}"[:80])
    return inputs.parse_id(args[0]), inputs.parse_quantity(args[1], lo=1, hi=5)


async def on_stars(sf: Storefront, inter: Any, args: list[str]) -> None:
    """A star button: the modal for the comment (pre-filled when editing)."""
    order_id, stars = _target(args)
    locale = locale_of(inter)
    rating = await ratings.check_rateable(sf.ctx.tenant_id, order_id, str(inter.author.id))
    await inter.response.send_modal(
        title=t("ratings.modal.title", locale, stars=ratings.stars_text(stars))[:45],
        custom_id=f"vt:rtm:{order_id}:{stars}",
        components=[
            disnake.ui.TextInput(
                label=t("ratings.modal.label", locale)[:45],
                custom_id=COMMENT_FIELD,
                style=disnake.TextInputStyle.paragraph,
                max_length=COMMENT_MAX,
                required=False,
                value=(rating.comment if rating else None) or None,
            )
        ],
    )


async def on_modal(sf: Storefront, inter: Any, args: list[str]) -> None:
    """The modal's submit: give or edit the rating; an ephemeral thanks."""
    order_id, stars = _target(args)
    comment = (getattr(inter, "text_values", None) or {}).get(COMMENT_FIELD)
    _, first = await ratings.submit(
        sf.ctx.tenant_id, order_id, str(inter.author.id), stars, comment
    )
    locale = locale_of(inter)
    key = "ratings.thanks" if first else "ratings.updated"
    await reply(inter, t(key, locale, stars=ratings.stars_text(stars)))


def setup(sf: Storefront) -> None:
    sf.route("rate", lambda inter, args: on_stars(sf, inter, args))
    sf.route("rtm", lambda inter, args: on_modal(sf, inter, args))

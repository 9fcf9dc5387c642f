"""The storefront: product panels, PIX checkout, delivery of paid orders, buyer and staff
commands. Everything commercial lives in `shop/`; this package only speaks Discord.

Custom ids of components and modals are `vt:<action>:<args>` and carry the state of the
checkout (variation, quantity, coupon), so a worker restart loses no card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shop import bot_requirements
from worker.extensions.storefront import (
    access,
    buyer,
    cart_ui,
    checkout_ui,
    delivery,
    fulfil_ui,
    panels,
    ratings_ui,
    rejoin,
    staff,
    tickets,
)
from worker.extensions.storefront.common import PREFIX, Storefront, check_tuning

if TYPE_CHECKING:
    from worker.bot import WorkerBot

INTENTS: tuple[str, ...] = ()  # interactions and REST only: no privileged intent required
# asked for only when the seller enabled it (worker.optional_intents): GUILD_MEMBER_ADD
# gives a rejoining buyer their access roles back within seconds (rejoin.py)
OPTIONAL_INTENTS = bot_requirements.OPTIONAL_INTENTS
__all__ = ["INTENTS", "OPTIONAL_INTENTS", "check_tuning", "setup"]


def setup(bot: WorkerBot) -> None:
    sf = Storefront(bot)
    bot.storefront = sf  # type: ignore[attr-defined]  # set here, read by storefront_of()
    for module in (checkout_ui, panels, buyer, staff, delivery, fulfil_ui, ratings_ui, tickets):
        module.setup(sf)
    access.setup(sf)  # timed access: roles, reminders, expiry (issue 16)
    rejoin.setup(sf)  # GUILD_MEMBER_ADD (when the members intent is on): roles back
    cart_ui.setup(sf)  # the cart: add from panels, /carrinho, one PIX (issue 17)

    async def on_interaction_component(inter: Any) -> None:
        custom_id = getattr(getattr(inter, "data", None), "custom_id", "") or ""
        if custom_id.startswith(PREFIX):
            await sf.dispatch(inter, custom_id)

    bot.add_listener(on_interaction_component, "on_message_interaction")
    bot.add_listener(on_interaction_component, "on_modal_submit")

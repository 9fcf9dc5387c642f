"""GUILD_MEMBER_ADD in the store's server: give a returning buyer their access roles back.

The event only arrives when the worker connected with the Server Members intent, which it
asks for only when the seller enabled it (`worker.optional_intents`, the storefront's
`OPTIONAL_INTENTS`); without it the access runner's periodic check restores the roles.
"""

from __future__ import annotations

import logging

import disnake

from shop.access_rejoin import member_rejoined
from worker.extensions.storefront.common import Storefront

log = logging.getLogger("worker.storefront.rejoin")


async def on_member_join(sf: Storefront, member: disnake.Member) -> None:
    """Mark the member's active grants in this store due now and wake the access runner."""
    if member.bot or member.guild.id != sf.bot.ctx.store_guild_id:
        return
    due = await member_rejoined(sf.ctx.tenant_id, str(member.guild.id), str(member.id))
    if due:
        log.info("member %s rejoined: %d access grant(s) due now", member.id, due)
        sf.access_due.set()


def setup(sf: Storefront) -> None:
    async def listener(member: disnake.Member) -> None:
        await on_member_join(sf, member)

    sf.bot.add_listener(listener, "on_member_join")

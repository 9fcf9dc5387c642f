"""The store's bot as the portal's pages use it: the instance, a reader with its token, the
store's server as it sees it, what the store's features ask of it (invite link, permission
check) and a problem explained in the seller's language. One place for the onboarding pickers,
the ticket settings and the role pickers of timed access."""

from __future__ import annotations

import logging
import re
from typing import Any

from quart import current_app, g

from fleet.models import BotInstance
from shop import store_setup, tickets
from shop.bot_requirements import CHANNEL_ROLES, Choices, Problem, StoreFeatures
from shop.bot_requirements import invite_permissions as permissions_for
from web.portal import discord_api
from web.portal.context import _, vault
from web.portal.discord_reads import BotReader, DiscordError, GuildView

log = logging.getLogger(__name__)

ID_MAX = 21  # a snowflake has at most 20 digits; longer input is refused before parsing
# ASCII digits only (`\d` would take other scripts' digits too).
SNOWFLAKE = re.compile(r"[0-9]{15,21}")


def snowflake(raw: Any) -> str | None:
    """A Discord id typed or posted by a person, or None when it is not one."""
    value = str(raw or "").strip()[: ID_MAX + 1]
    return value if SNOWFLAKE.fullmatch(value) else None


async def store_instance() -> BotInstance | None:
    """The current store's bot instance (its first one)."""
    return await BotInstance.filter(tenant_id=g.tenant.id).order_by("id").first()


def bot_reader(instance: BotInstance, *, fresh: bool = False) -> BotReader:
    settings = current_app.config["VITRINE_SETTINGS"]
    token = vault().decrypt(instance.token_enc).reveal()
    return BotReader(settings, token, instance.id, fresh=fresh)


async def store_guild(
    no_server_key: str, *, fresh: bool = False
) -> tuple[GuildView | None, str | None]:
    """The store's server as its bot sees it, or (None, why not) in the seller's language;
    `no_server_key`: the message when the store has no bot or no server yet."""
    instance = await store_instance()
    if instance is None or not instance.token_enc or not g.tenant.guild_id:
        return None, _(no_server_key)
    try:
        view = await bot_reader(instance, fresh=fresh).guild(
            g.tenant.guild_id, instance.bot_user_id or ""
        )
    except DiscordError as exc:
        log.info("could not read guild %s: %s", g.tenant.guild_id, exc)
        return None, _(exc.key)
    return view, None


async def store_features() -> StoreFeatures:
    """What the current store uses that changes what its bot needs."""
    category = (await tickets.settings_of(g.tenant.id)).category_id
    return StoreFeatures(buyer_role=bool(g.tenant.buyer_role_id), ticket_channels=bool(category))


async def invite_permissions() -> int:
    """The permission integer the current store's invite link asks for."""
    return permissions_for(await store_features())


async def invite_link(instance: BotInstance) -> str:
    settings = current_app.config["VITRINE_SETTINGS"]
    app_id = instance.application_id or ""
    return discord_api.invite_url(settings, app_id, g.tenant.guild_id, await invite_permissions())


async def saved_choices() -> Choices:
    """What the seller saved: channels, buyer role and the tickets' category."""
    values = store_setup.current(g.tenant)
    category = (await tickets.settings_of(g.tenant.id)).category_id
    return Choices(
        channels={p: values[store_setup.CHANNEL_FIELDS[p]] or None for p in CHANNEL_ROLES},
        buyer_role_id=values["buyer_role_id"] or None,
        ticket_category_id=category,
    )


def explain(problem: Problem, view: GuildView) -> dict[str, str]:
    """A problem in the seller's language: what is wrong and how to fix it."""
    snap = view.snapshot
    bot_role = next(
        (view.role_names[r] for r in snap.bot_roles if r in snap.roles and snap.roles[r].managed),
        view.role_names.get(snap.bot_roles[0], "") if snap.bot_roles else "",
    )
    params = {
        "channel": problem.where_name,
        "purpose": _(f"onb.purpose.{problem.where_name}") if problem.code == "channel_gone" else "",
        "perms": ", ".join(_(f"onb.perm.{p}") for p in problem.permissions),
        "bot_role": bot_role or "?",
        "role": view.role_names.get(problem.where, problem.where),
    }
    return {
        "code": problem.code,
        "where": problem.where,
        "text": _(f"onb.problem.{problem.code}", **params),
        "fix": _(f"onb.fix.{problem.code}", **params),
    }

"""Onboarding without typing ids (issue 18): after the token is checked and the bot has
joined, the seller picks the store's server, channels and buyer role from what the bot sees,
and a permission check says what the bot lacks, where, and how to fix it.

Every id posted is checked against a fresh read of what the bot sees: a guild the bot is not
in, a guild the seller does not own or manage, or a channel/role of another guild is refused.
Typed ids are accepted only while reading from Discord fails (the fallback inputs appear then).
"""

from __future__ import annotations

import logging

from quart import Blueprint, g, redirect, request, url_for

from fleet.control_protocol import mark_dirty
from fleet.models import BotInstance
from shop import store_setup
from shop.bot_requirements import CHANNEL_ROLES, check
from shop.bot_requirements import seller_can_manage as can_manage
from web.portal.context import _, actor, redis, render, say, store_required
from web.portal.discord_reads import BotReader, DiscordError, forget
from web.portal.security import rate_limited
from web.portal.store_bot import (
    ID_MAX,
    bot_reader,
    explain,
    invite_link,
    saved_choices,
    snowflake,
    store_instance,
)

bp = Blueprint("discord_setup", __name__)
log = logging.getLogger(__name__)

RECHECK_LIMIT = (30, 60)  # "check again" clicks per store per minute


async def _reload(instance_ids: list[int]) -> None:
    if instance_ids and redis() is not None:
        await mark_dirty(redis(), *instance_ids)


# ---- the server ---------------------------------------------------------------------
@bp.get("/bot/server")
@store_required
async def server():
    instance = await store_instance()
    if instance is None or not instance.token_enc:
        return redirect(url_for("onboarding.bot"))
    # "Refresh the list" (after adding the bot) skips the short cache, within a rate limit.
    fresh = request.args.get("fresh") == "1" and not await rate_limited(
        "perm_check", f"tenant{g.tenant.id}", *RECHECK_LIMIT
    )
    return await _server_page(instance, fresh=fresh)


async def _server_page(
    instance: BotInstance, error: str | None = None, status: int = 200, fresh: bool = False
):
    guilds, read_error = None, None
    try:
        guilds = await bot_reader(instance, fresh=fresh).guilds()
    except DiscordError as exc:
        log.info("could not list the guilds of instance %s: %s", instance.id, exc)
        read_error = _(exc.key)
    return await render(
        "portal/discord_server.html",
        status=status,
        guilds=guilds,
        read_error=read_error,
        error=error,
        invite=await invite_link(instance),
        current=g.tenant.guild_id,
    )


@bp.post("/bot/server")
@store_required
async def choose_server():
    instance = await store_instance()
    if instance is None or not instance.token_enc:
        return redirect(url_for("onboarding.bot"))
    form = await request.form
    guild_id = snowflake(form.get("guild_id"))
    if guild_id is None:
        return await _server_page(instance, _("portal.error.snowflake"), 400)
    reader = bot_reader(instance, fresh=True)
    try:
        seen = {c.id for c in await reader.guilds()}
    except DiscordError as exc:  # reading fails: the typed id is the fallback
        log.info(
            "guild list unreadable for instance %s, accepting a typed id: %s", instance.id, exc
        )
        seen = None
    if seen is not None:
        if guild_id not in seen:
            return await _server_page(instance, _("onb.error.not_in_guild"), 400)
        refusal = await _seller_refusal(reader, guild_id)
        if refusal:
            return await _server_page(instance, refusal, 403)
    await _reload(await store_setup.choose_guild(g.tenant, guild_id, actor()))
    await say("onb.server.saved")
    return redirect(url_for("discord_setup.channels"))


async def _seller_refusal(reader: BotReader, guild_id: str) -> str | None:
    """Only the server's owner or a member with Manage Server may make it a store's server
    (checked with the bot's token: the seller's own roles in that server)."""
    try:
        owner_id, _name = await reader.owner_and_name(guild_id)
        roles, _names = await reader.roles(guild_id)
        seller_roles = await reader.member_roles(guild_id, g.account.discord_id)
    except DiscordError as exc:
        return _(exc.key)
    if not can_manage(guild_id, owner_id, g.account.discord_id, seller_roles, roles):
        return _("onb.error.not_manager")
    return None


# ---- channels, buyer role and the permission check ---------------------------------
@bp.get("/bot/channels")
@store_required
async def channels():
    instance = await store_instance()
    if instance is None or not instance.token_enc:
        return redirect(url_for("onboarding.bot"))
    if not g.tenant.guild_id:
        return redirect(url_for("discord_setup.server"))
    return await _channels_page(instance, _form_of_tenant())


def _form_of_tenant() -> dict[str, str]:
    values = store_setup.current(g.tenant)
    form = {p: values[f] or "" for p, f in store_setup.CHANNEL_FIELDS.items()}
    form["buyer_role"] = values["buyer_role_id"] or ""
    return form


async def _channels_page(
    instance: BotInstance,
    form: dict[str, str],
    error: str | None = None,
    status: int = 200,
):
    view, read_error = None, None
    try:
        view = await bot_reader(instance).guild(g.tenant.guild_id, instance.bot_user_id or "")
    except DiscordError as exc:
        log.info("could not read guild %s for instance %s: %s", g.tenant.guild_id, instance.id, exc)
        read_error = _(exc.key)
    problems = None
    if view is not None:
        problems = [explain(p, view) for p in check(view.snapshot, await saved_choices())]
    return await render(
        "portal/discord_channels.html",
        status=status,
        view=view,
        read_error=read_error,
        error=error,
        form=form,
        purposes=CHANNEL_ROLES,
        problems=problems,
        invite=await invite_link(instance),
    )


@bp.post("/bot/channels")
@store_required
async def choose_channels():
    instance = await store_instance()
    if instance is None or not instance.token_enc or not g.tenant.guild_id:
        return redirect(url_for("discord_setup.server"))
    raw = await request.form
    form = {p: str(raw.get(p) or "")[: ID_MAX + 1] for p in (*CHANNEL_ROLES, "buyer_role")}
    picked = {k: snowflake(v) for k, v in form.items()}
    if any(form[k].strip() and picked[k] is None for k in form):
        return await _channels_page(instance, form, _("portal.error.snowflake"), 400)
    try:
        view = await bot_reader(instance, fresh=True).guild(
            g.tenant.guild_id, instance.bot_user_id or ""
        )
    except DiscordError as exc:  # reading fails: the typed ids are the fallback
        log.info("guild unreadable for instance %s, accepting typed ids: %s", instance.id, exc)
        view = None
    if view is not None:
        channel_ids = {c.id for c in view.text_channels}
        role_ids = {r.id for r in view.roles}
        foreign = [p for p in CHANNEL_ROLES if picked[p] and picked[p] not in channel_ids]
        if picked["buyer_role"] and picked["buyer_role"] not in role_ids:
            foreign.append("buyer_role")
        if foreign:
            return await _channels_page(instance, form, _("onb.error.foreign_id"), 400)
    choices = store_setup.DiscordChoices(
        channels={p: picked[p] for p in CHANNEL_ROLES}, buyer_role_id=picked["buyer_role"]
    )
    await _reload(await store_setup.choose_channels(g.tenant, choices, actor()))
    await say("onb.channels.saved")
    return redirect(url_for("discord_setup.channels") + "#check")


@bp.post("/bot/check")
@store_required
async def recheck():
    """The "check again" button: forget the cached answers, read again."""
    instance = await store_instance()
    if instance is None:
        return redirect(url_for("onboarding.bot"))
    if not await rate_limited("perm_check", f"tenant{g.tenant.id}", *RECHECK_LIMIT):
        forget(instance.id)
    return redirect(url_for("discord_setup.channels") + "#check")

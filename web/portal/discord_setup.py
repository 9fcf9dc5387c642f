"""Onboarding without typing ids (issue 18): after the token is checked and the bot has
joined, the seller picks the store's server, channels and buyer role from what the bot sees,
and a permission check says what the bot lacks, where, and how to fix it.

Every id posted is checked against a fresh read of what the bot sees: a guild the bot is not
in, a guild the seller does not own or manage, or a channel/role of another guild is refused.
Typed ids are accepted only while reading from Discord fails (the fallback inputs appear then).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from quart import Blueprint, current_app, g, redirect, request, url_for

from fleet.control_protocol import mark_dirty
from fleet.models import BotInstance
from shop import store_setup
from shop.bot_requirements import CHANNEL_ROLES, Choices, StoreFeatures, check, invite_permissions
from shop.bot_requirements import seller_can_manage as can_manage
from web.portal import discord_api
from web.portal.context import _, actor, redis, render, say, store_required, vault
from web.portal.discord_reads import BotReader, DiscordError, GuildView, forget
from web.portal.security import rate_limited

bp = Blueprint("discord_setup", __name__)
log = logging.getLogger(__name__)

ID_MAX = 21  # a snowflake has at most 20 digits; longer input is refused before parsing
# ASCII digits only (`\d` would take other scripts' digits too).
SNOWFLAKE = re.compile(r"[0-9]{15,21}")
RECHECK_LIMIT = (30, 60)  # "check again" clicks per store per minute


def _snowflake(raw: Any) -> str | None:
    value = str(raw or "").strip()[: ID_MAX + 1]
    return value if SNOWFLAKE.fullmatch(value) else None


async def _instance() -> BotInstance | None:
    return await BotInstance.filter(tenant_id=g.tenant.id).order_by("id").first()


def _reader(instance: BotInstance, *, fresh: bool = False) -> BotReader:
    settings = current_app.config["VITRINE_SETTINGS"]
    token = vault().decrypt(instance.token_enc).reveal()
    return BotReader(settings, token, instance.id, fresh=fresh)


def _invite(instance: BotInstance) -> str:
    settings = current_app.config["VITRINE_SETTINGS"]
    perms = invite_permissions(StoreFeatures(buyer_role=bool(g.tenant.buyer_role_id)))
    app_id = instance.application_id or ""
    return discord_api.invite_url(settings, app_id, g.tenant.guild_id, perms)


async def _reload(instance_ids: list[int]) -> None:
    if instance_ids and redis() is not None:
        await mark_dirty(redis(), *instance_ids)


# ---- the server ---------------------------------------------------------------------
@bp.get("/bot/server")
@store_required
async def server():
    instance = await _instance()
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
        guilds = await _reader(instance, fresh=fresh).guilds()
    except DiscordError as exc:
        log.info("could not list the guilds of instance %s: %s", instance.id, exc)
        read_error = _(exc.key)
    return await render(
        "portal/discord_server.html",
        status=status,
        guilds=guilds,
        read_error=read_error,
        error=error,
        invite=_invite(instance),
        current=g.tenant.guild_id,
    )


@bp.post("/bot/server")
@store_required
async def choose_server():
    instance = await _instance()
    if instance is None or not instance.token_enc:
        return redirect(url_for("onboarding.bot"))
    form = await request.form
    guild_id = _snowflake(form.get("guild_id"))
    if guild_id is None:
        return await _server_page(instance, _("portal.error.snowflake"), 400)
    reader = _reader(instance, fresh=True)
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
    instance = await _instance()
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
        view = await _reader(instance).guild(g.tenant.guild_id, instance.bot_user_id or "")
    except DiscordError as exc:
        log.info("could not read guild %s for instance %s: %s", g.tenant.guild_id, instance.id, exc)
        read_error = _(exc.key)
    problems = None
    if view is not None:
        saved = _form_of_tenant()
        choices = Choices(
            channels={p: saved[p] or None for p in CHANNEL_ROLES},
            buyer_role_id=saved["buyer_role"] or None,
        )
        problems = [_explain(p, view) for p in check(view.snapshot, choices)]
    return await render(
        "portal/discord_channels.html",
        status=status,
        view=view,
        read_error=read_error,
        error=error,
        form=form,
        purposes=CHANNEL_ROLES,
        problems=problems,
        invite=_invite(instance),
    )


@bp.post("/bot/channels")
@store_required
async def choose_channels():
    instance = await _instance()
    if instance is None or not instance.token_enc or not g.tenant.guild_id:
        return redirect(url_for("discord_setup.server"))
    raw = await request.form
    form = {p: str(raw.get(p) or "")[: ID_MAX + 1] for p in (*CHANNEL_ROLES, "buyer_role")}
    picked = {k: _snowflake(v) for k, v in form.items()}
    if any(form[k].strip() and picked[k] is None for k in form):
        return await _channels_page(instance, form, _("portal.error.snowflake"), 400)
    try:
        view = await _reader(instance, fresh=True).guild(
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
    instance = await _instance()
    if instance is None:
        return redirect(url_for("onboarding.bot"))
    if not await rate_limited("perm_check", f"tenant{g.tenant.id}", *RECHECK_LIMIT):
        forget(instance.id)
    return redirect(url_for("discord_setup.channels") + "#check")


def _explain(problem: Any, view: GuildView) -> dict[str, str]:
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

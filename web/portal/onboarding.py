"""Onboarding: create a store, paste the bot token (validated against Discord), invite it."""

from __future__ import annotations

import logging

from quart import Blueprint, abort, current_app, g, redirect, request, session, url_for
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import audit
from fleet.control_protocol import mark_dirty
from fleet.models import BotInstance
from shop.models import Tenant
from web.portal import discord_api
from web.portal.context import (
    _,
    actor,
    login_required,
    redis,
    render,
    say,
    store_required,
    vault,
)
from web.portal.security import client_ip, rate_limited
from web.portal.store_bot import invite_permissions, store_instance

bp = Blueprint("onboarding", __name__)
log = logging.getLogger(__name__)

STORE_NAME_MAX = 100
MAX_STORES_PER_ACCOUNT = 5
TOKEN_CHECK_LIMIT = (10, 600)  # per account and per IP: 10 validations per 10 minutes


@bp.route("/stores/new", methods=["GET", "POST"])
@login_required
async def new_store():
    error = None
    name = ""
    if request.method == "POST":
        name = ((await request.form).get("name") or "").strip()
        count = await Tenant.filter(owner_id=g.account.id).count()
        if not name:
            error = _("portal.error.required")
        elif len(name) > STORE_NAME_MAX:
            error = _("portal.error.too_long", max=STORE_NAME_MAX)
        elif count >= MAX_STORES_PER_ACCOUNT:
            error = _("portal.store.too_many", max=MAX_STORES_PER_ACCOUNT)
        else:
            tenant = await Tenant.create(owner_id=g.account.id, name=name, locale=g.locale)
            await audit.record(
                actor(),
                "tenant.created",
                "tenant",
                tenant.id,
                tenant_id=tenant.id,
                after={"name": name},
            )
            session["tenant_id"] = tenant.id
            await say("portal.store.created", name=name)
            return redirect(url_for("onboarding.bot"))
    return await render(
        "portal/store_new.html", status=400 if error else 200, error=error, name=name
    )


@bp.post("/stores/<int:tenant_id>/switch")
@login_required
async def switch_store(tenant_id: int):
    tenant = await Tenant.get_or_none(id=tenant_id, owner_id=g.account.id)
    if tenant is None:
        abort(404)
    session["tenant_id"] = tenant.id
    return redirect(url_for("dashboard.index"))


@bp.get("/bot")
@store_required
async def bot():
    return await _bot_page(await store_instance())


async def _bot_page(instance: BotInstance | None, error: str | None = None, status: int = 200):
    settings = current_app.config["VITRINE_SETTINGS"]
    invite = None
    permissions = await invite_permissions()
    if instance is not None and instance.application_id:
        invite = discord_api.invite_url(
            settings, instance.application_id, g.tenant.guild_id, permissions
        )
    return await render(
        "portal/bot.html",
        status=status,
        instance=instance,
        error=error,
        invite=invite,
        avatar=discord_api.avatar_url(instance.bot_user_id, instance.bot_avatar)
        if instance
        else None,
        permissions=permissions,
        required_intents=discord_api.REQUIRED_PRIVILEGED_INTENTS,
        intents=session.get("bot_intents"),
    )


@bp.post("/bot")
@store_required
async def save_token():
    """Validate the pasted token with Discord; store it encrypted only when it is valid."""
    instance = await store_instance()
    token = ((await request.form).get("token") or "").strip()
    if not token:
        return await _bot_page(instance, _("portal.bot.token_required"), 400)
    if await rate_limited(
        "token_check", f"acct{g.account.id}", *TOKEN_CHECK_LIMIT
    ) or await rate_limited("token_check", client_ip(), *TOKEN_CHECK_LIMIT):
        return await _bot_page(instance, _("portal.bot.rate_limited"), 429)
    settings = current_app.config["VITRINE_SETTINGS"]
    try:
        identity = await discord_api.validate_bot_token(settings, token)
    except discord_api.DiscordError as exc:
        log.info("bot token rejected for tenant %s: %s", g.tenant.id, exc)
        status = 502 if type(exc) is discord_api.DiscordError else 400
        return await _bot_page(instance, _(exc.key), status)
    if token.lower().startswith("bot "):
        token = token[4:].strip()
    clash = (
        await BotInstance.filter(application_id=identity.application_id)
        .exclude(tenant_id=g.tenant.id)
        .exists()
    )
    if clash:
        return await _bot_page(instance, _("portal.bot.in_use"), 409)
    try:
        instance = await _store_token(instance, identity, token)
    except IntegrityError:  # another store saved the same bot between the check and now
        return await _bot_page(await store_instance(), _("portal.bot.in_use"), 409)
    session["bot_intents"] = identity.intents_enabled()
    await say("portal.bot.saved", name=identity.username)
    return redirect(url_for("onboarding.bot"))


async def _store_token(
    instance: BotInstance | None, identity: discord_api.BotIdentity, token: str
) -> BotInstance:
    fields = {
        "token_enc": vault().encrypt(token),
        "application_id": identity.application_id,
        "bot_user_id": identity.user_id,
        "bot_username": identity.username,
        "bot_avatar": identity.avatar,
        "name": identity.username[:100],
        "bot_public": identity.bot_public,
    }
    async with in_transaction() as conn:
        if instance is None:
            instance = await BotInstance.create(tenant_id=g.tenant.id, using_db=conn, **fields)
            action = "instance.created"
        else:
            for name, value in fields.items():
                setattr(instance, name, value)
            instance.config_version += 1
            await instance.save(using_db=conn)
            action = "instance.token_replaced"
        await audit.record(
            actor(),
            action,
            "instance",
            instance.id,
            tenant_id=g.tenant.id,
            after={
                "application_id": identity.application_id,
                "bot_user_id": identity.user_id,
                "config_version": instance.config_version,
            },
            using_db=conn,
        )
    if redis() is not None:
        await mark_dirty(redis(), instance.id)
    return instance

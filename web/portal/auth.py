"""Login with Discord (OAuth2 authorization code), logout, blocked accounts, language switch."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from quart import Blueprint, current_app, g, redirect, request, session, url_for
from quart_auth import AuthUser, login_user, logout_user

from core import audit
from core.i18n import SUPPORTED
from shop.models import Account, AccountRole, WebSession
from web.common import safe_next_path
from web.portal import discord_api
from web.portal.appeal import announce_answer, blocked_account, blocked_page
from web.portal.context import LANG_COOKIE, _, remember_blocked, render, say
from web.portal.security import client_ip, rate_limited, rotate_csrf_token

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

LOGIN_LIMIT = (20, 300)  # per IP: 20 login attempts per 5 minutes


@bp.get("/login")
async def login():
    if g.account is not None:
        return redirect(url_for("dashboard.index"))
    configured = bool(current_app.config["VITRINE_SETTINGS"].discord_client_id)
    return await render("portal/login.html", configured=configured)


@bp.get("/auth/discord")
async def start_login():
    """Send the browser to Discord with a fresh `state` kept in the signed session."""
    if await rate_limited("login", client_ip(), *LOGIN_LIMIT):
        return await render(
            "portal/login.html", status=429, configured=True, error=_("portal.login.rate_limited")
        )
    state = secrets.token_urlsafe(24)
    session["oauth_state"] = state
    return redirect(discord_api.authorize_url(current_app.config["VITRINE_SETTINGS"], state))


@bp.get("/auth/callback")
async def callback():
    """Discord sends the browser back here with `code` and our `state`."""
    settings = current_app.config["VITRINE_SETTINGS"]
    expected = session.pop("oauth_state", None)
    state = request.args.get("state", "")
    if not expected or not secrets.compare_digest(expected, state):
        return await _login_error("portal.login.bad_state", 400)
    if request.args.get("error"):
        return await _login_error("portal.login.denied", 200)
    if await rate_limited("login", client_ip(), *LOGIN_LIMIT):
        return await _login_error("portal.login.rate_limited", 429)
    try:
        access = await discord_api.exchange_code(settings, request.args.get("code", ""))
        user = await discord_api.fetch_user(settings, access)
    except discord_api.DiscordError as exc:
        log.warning("portal login failed: %s", exc)
        return await _login_error(exc.key, 400 if isinstance(exc, discord_api.OAuthFailed) else 502)
    account = await _upsert_account(user)
    if account.blocked:
        remember_blocked(account)  # Discord proved who this is: the blocked page takes an appeal
        return await blocked_page(account)
    await announce_answer(account)
    web_session = await WebSession.create(
        id=secrets.token_urlsafe(32),
        account=account,
        user_agent=request.headers.get("User-Agent", "")[:300],
    )
    login_user(AuthUser(web_session.id), remember=True)
    session.pop("tenant_id", None)
    rotate_csrf_token()  # a token seen or planted before login must not work after it
    await audit.record(
        f"account:{account.id}", "portal.login", "account", account.id, after={"ip": client_ip()}
    )
    return redirect(safe_next_path(session.pop("next", None), url_for("dashboard.index")))


async def _upsert_account(user: dict) -> Account:
    name = str(user.get("global_name") or user.get("username") or "")[:100]
    account = await Account.get_or_none(discord_id=str(user["id"]))
    now = datetime.now(UTC)
    if account is None:
        locale = request.cookies.get(LANG_COOKIE)
        account = await Account.create(
            discord_id=str(user["id"]),
            username=name,
            avatar=user.get("avatar"),
            role=AccountRole.OWNER,
            last_login_at=now,
            locale=locale
            if locale in SUPPORTED
            else current_app.config["VITRINE_SETTINGS"].default_locale,
        )
        await audit.record(
            f"account:{account.id}",
            "account.created",
            "account",
            account.id,
            after={"discord_id": account.discord_id},
        )
        return account
    account.username = name or account.username
    account.avatar = user.get("avatar")
    account.last_login_at = now
    await account.save(update_fields=["username", "avatar", "last_login_at"])
    return account


async def _login_error(key: str, status: int):
    configured = bool(current_app.config["VITRINE_SETTINGS"].discord_client_id)
    return await render("portal/login.html", status=status, configured=configured, error=_(key))


@bp.post("/logout")
async def logout():
    """Revoke this session server-side (the cookie is useless afterwards) and forget it."""
    if g.session_id:
        await WebSession.filter(id=g.session_id).update(revoked_at=datetime.now(UTC))
        await audit.record(f"account:{g.account.id}", "portal.logout", "account", g.account.id)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/blocked")
async def blocked():
    """Why the account is blocked and its appeal; once unblocked, the team's answer."""
    account = await blocked_account()
    if account is None:
        return redirect(url_for("auth.login"))
    return await blocked_page(account)


@bp.post("/lang")
async def set_language():
    form = await request.form
    locale = form.get("locale", "")
    if locale not in SUPPORTED:
        locale = current_app.config["VITRINE_SETTINGS"].default_locale
    if g.account is not None:
        g.account.locale = locale
        await g.account.save(update_fields=["locale"])
    g.locale = locale
    await say("portal.lang.changed")
    response = redirect(safe_next_path(form.get("next"), url_for("dashboard.index")))
    settings = current_app.config["VITRINE_SETTINGS"]
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 86400,
        samesite="Lax",
        httponly=True,
        secure=settings.public_base_url.startswith("https://"),
    )
    return response

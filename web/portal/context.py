"""Per-request state of the portal: who is logged in, which store, which language; helpers
every view uses (render, owned-object lookup, actor name, vault)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from quart import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from quart_auth import current_user, logout_user
from tortoise.models import Model

from core.i18n import SUPPORTED, normalize_locale, t
from core.vault import TokenVault
from shop.models import Account, Tenant, WebSession

LANG_COOKIE = "vitrine_lang"
BLOCKED_SESSION_KEY = "blocked_account"
_TOUCH_EVERY = timedelta(minutes=5)
M = TypeVar("M", bound=Model)


async def load_request_state() -> None:
    """before_request: resolve the session cookie to an account and a store; pick a language."""
    g.account = None
    g.tenant = None
    g.session_id = None
    auth_id = current_user.auth_id
    if auth_id:
        web_session = await WebSession.get_or_none(
            id=auth_id, revoked_at__isnull=True
        ).prefetch_related("account")
        if web_session is None:
            logout_user()  # revoked or unknown: the cookie is worthless now
        elif web_session.account.blocked:
            g.blocked_account = web_session.account
            remember_blocked(web_session.account)  # so the blocked page can take an appeal
            logout_user()
        else:
            g.account = web_session.account
            g.session_id = web_session.id
            await _touch(web_session)
            g.tenant = await _current_tenant(g.account)
    g.locale = pick_locale()


def remember_blocked(account: Account) -> None:
    """Discord (or a still-valid session) just proved this browser is `account`'s owner, and
    the account is blocked: it has no portal session, so the signed session keeps who it is
    for a day, for the blocked page and its appeal form (`web.portal.appeal`)."""
    session[BLOCKED_SESSION_KEY] = {"id": account.id, "at": int(time.time())}


async def _touch(web_session: WebSession) -> None:
    now = datetime.now(UTC)
    if now - web_session.last_seen_at > _TOUCH_EVERY:
        await WebSession.filter(id=web_session.id).update(last_seen_at=now)


async def _current_tenant(account: Account) -> Tenant | None:
    wanted = session.get("tenant_id")
    if wanted is not None:
        tenant = await Tenant.get_or_none(id=wanted, owner_id=account.id)
        if tenant is not None:
            return tenant
    tenant = await Tenant.filter(owner_id=account.id).order_by("id").first()
    if tenant is not None:
        session["tenant_id"] = tenant.id
    return tenant


def pick_locale() -> str:
    """The account's language, else the language cookie, else the configured default."""
    account = getattr(g, "account", None)
    if account is not None and account.locale in SUPPORTED:
        return account.locale
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in SUPPORTED:
        return cookie
    return current_app.config["VITRINE_SETTINGS"].default_locale


def _(key: str, **params: Any) -> str:
    """Translate in the request's language."""
    return t(key, getattr(g, "locale", None), **params)


def template_globals() -> dict[str, Any]:
    return {
        "account": getattr(g, "account", None),
        "tenant": getattr(g, "tenant", None),
        "locale": getattr(g, "locale", "pt-BR"),
        "normalize_locale": normalize_locale,
    }


async def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return await render_template(template, **context), status


async def say(key: str, category: str = "success", **params: Any) -> None:
    """Flash a translated message for the next page."""
    await flash(_(key, **params), category)


def actor() -> str:
    """How the audit log names the person acting."""
    return f"account:{g.account.id}"


def vault() -> TokenVault:
    v = current_app.config.get("PORTAL_VAULT")
    if v is None:
        settings = current_app.config["VITRINE_SETTINGS"]
        v = current_app.config["PORTAL_VAULT"] = TokenVault(settings.token_encryption_keys)
    return v


def redis() -> Any:
    return current_app.config.get("REDIS")


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def login_required(view: F) -> F:
    """Pages for logged-in accounts: others go to the login page (and come back after)."""

    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(g, "blocked_account", None) is not None:
            return redirect(url_for("auth.blocked"))
        if g.account is None:
            if request.method == "GET":
                session["next"] = request.full_path if request.query_string else request.path
            return redirect(url_for("auth.login"))
        return await view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # same signature as `view`


def store_required(view: F) -> F:
    """Pages about one store: an account without a store goes to create one first."""

    @functools.wraps(view)
    @login_required
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.tenant is None:
            return redirect(url_for("onboarding.new_store"))
        return await view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # same signature as `view`


async def owned(model: type[M], object_id: int, **filters: Any) -> M:
    """The current store's object with that id, or 404 — also for another store's ids."""
    obj = await model.get_or_none(id=object_id, tenant_id=g.tenant.id, **filters)
    if obj is None:
        abort(404)
    return obj


def form_errors(errors: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Translate `shop.catalog` error tuples for the template."""
    return {name: _(key, **params) for name, (key, params) in errors.items()}


def wants_partial() -> bool:
    return request.headers.get("HX-Request") == "true"

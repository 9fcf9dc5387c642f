"""Wires the portal's pages into the base app: sessions, CSRF, templates, static files, errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import FileSystemLoader
from quart import Quart, g, redirect, request, url_for
from quart_auth import QuartAuth
from werkzeug.exceptions import HTTPException

from core.i18n import format_brl
from core.settings import Settings
from web.portal import (
    appeal,
    auth,
    blocklist,
    cart_orders,
    catalog,
    coupons,
    dashboard,
    discord_setup,
    money,
    mp_connect,
    notices_page,
    onboarding,
    orders,
    ratings_page,
    settings_page,
    stock,
    subscribers,
    support,
    tickets_page,
    uploads,
    variation_access,
    variation_kinds,
)
from web.portal.context import _, load_request_state, render, template_globals
from web.portal.dashboard import BRT
from web.portal.security import csrf_token, protect_request

WEB_DIR = Path(__file__).resolve().parent.parent
SESSION_DAYS = 30
BLUEPRINTS = (
    auth.bp,
    appeal.bp,
    onboarding.bp,
    discord_setup.bp,
    dashboard.bp,
    notices_page.bp,
    catalog.bp,
    coupons.bp,
    stock.bp,
    orders.bp,
    cart_orders.bp,
    money.bp,
    mp_connect.bp,
    settings_page.bp,
    support.bp,
    tickets_page.bp,
    blocklist.bp,
    ratings_page.bp,
    subscribers.bp,
    variation_access.bp,
    variation_kinds.bp,
)
# The portal's own scripts and styles come from /static; htmx needs no eval.
PORTAL_CSP = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self' {oauth}; object-src 'none'"
)


def configure_portal(app: Quart, settings: Settings) -> None:
    secure = settings.public_base_url.startswith("https://")
    app.secret_key = settings.portal_session_secret
    app.config.update(
        QUART_AUTH_COOKIE_NAME="vitrine_portal",
        QUART_AUTH_COOKIE_SECURE=secure,
        QUART_AUTH_COOKIE_SAMESITE="Lax",  # Strict would drop the cookie on Discord's redirect
        QUART_AUTH_COOKIE_HTTP_ONLY=True,
        QUART_AUTH_DURATION=SESSION_DAYS * 86400,
        QUART_AUTH_SALT="vitrine portal session",
        SESSION_COOKIE_NAME="vitrine_s",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(days=SESSION_DAYS),
        PORTAL_CSP=PORTAL_CSP.format(oauth=settings.discord_oauth_base),
    )
    QuartAuth(app)
    app.jinja_loader = FileSystemLoader(str(WEB_DIR / "templates"))
    app.static_folder = str(WEB_DIR / "static")
    # Globals (not context) so that imported macros see them too.
    app.jinja_env.globals.update(url_for=url_for, _=_, brl=format_brl, csrf_token=csrf_token)
    app.jinja_env.filters["dt"] = _format_datetime
    app.jinja_env.filters["date"] = _format_date
    app.context_processor(template_globals)
    app.before_request(load_request_state)
    uploads.install(app)  # body limits per route, checked before the CSRF check reads the form
    app.before_request(protect_request)
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    _error_pages(app)

    @app.after_request
    async def _portal_headers(response):
        if request.blueprint != "mercadopago_webhooks":
            response.headers["Content-Security-Policy"] = app.config["PORTAL_CSP"]
            response.headers.setdefault(
                "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
            )
            if response.mimetype == "text/html":
                response.headers.setdefault("Cache-Control", "no-store")
        if secure:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response


def _format_datetime(value: datetime | None) -> str:
    """Brasília time, the way Brazilians write it."""
    return value.astimezone(BRT).strftime("%d/%m/%Y %H:%M") if value else ""


def _format_date(value: datetime | None) -> str:
    return value.astimezone(BRT).strftime("%d/%m/%Y") if value else ""


def _error_pages(app: Quart) -> None:
    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException):
        if (
            request.blueprint == "mercadopago_webhooks"
            or request.path in ("/health",)
            or request.accept_mimetypes.best == "application/json"
        ):
            from quart import jsonify

            return jsonify({"error": exc.name, "message": exc.description}), exc.code
        if exc.code == 401:
            return redirect(url_for("auth.login"))
        if not hasattr(g, "locale"):
            g.locale = settings_locale(app)
        return await render(
            "portal/error.html", status=exc.code or 500, code=exc.code, description=exc.description
        )


def settings_locale(app: Quart) -> str:
    return app.config["VITRINE_SETTINGS"].default_locale

"""Connecting a store's own Mercado Pago account (OAuth): start, callback, disconnect, and
the page that shows the connection, its switches and the sales paid into it (issue 20).

`state` is random, bound to this browser's signed session with the store it was made for,
single use (popped at the callback) and valid for 10 minutes, as a Mercado Pago code is;
the PKCE verifier stays in the session too. Only the store's owner connects or disconnects.
Starting is a GET link, like the Discord login: it changes nothing but this session's pending
state, and nothing is connected without the seller's consent at Mercado Pago and a callback
carrying that state; disconnecting is a POST with the CSRF token.
"""

from __future__ import annotations

import logging
import secrets
import time

from quart import Blueprint, abort, current_app, g, redirect, request, session, url_for

from shop.payments import connected
from shop.payments.connected_report import store_overview
from shop.payments.mp_oauth import MercadoPagoOAuth, MPOAuthError, authorize_url, new_pkce
from web.portal.context import _, actor, render, say, store_required, vault
from web.portal.security import client_ip, rate_limited

bp = Blueprint("mp_connect", __name__)
log = logging.getLogger(__name__)

SESSION_KEY = "mp_oauth"
STATE_TTL_S = 600
CONNECT_LIMIT = (10, 300)  # per store: 10 connection attempts per 5 minutes
MAX_PARAM = 512


def _owner_only() -> None:
    if g.tenant.owner_id != g.account.id:
        abort(403)


def _cfg():
    return current_app.config["VITRINE_SETTINGS"].mp_connect


async def _page(error: str | None = None, status: int = 200):
    return await render(
        "portal/mercadopago.html",
        status=status,
        error=error,
        enabled=_cfg().enabled,
        **await store_overview(g.tenant.id),
    )


@bp.get("/money/mercadopago")
@store_required
async def page():
    return await _page()


@bp.get("/money/mercadopago/connect")
@store_required
async def start():
    """Send the owner's browser to Mercado Pago with a fresh state and PKCE challenge."""
    _owner_only()
    if not _cfg().enabled:
        return await _page(_("mpconnect.not_configured"), 404)
    if await rate_limited("mp_connect", str(g.tenant.id), *CONNECT_LIMIT):
        return await _page(_("portal.login.rate_limited"), 429)
    state = secrets.token_urlsafe(24)
    verifier, challenge = new_pkce()
    session[SESSION_KEY] = {
        "state": state,
        "verifier": verifier,
        "tenant_id": g.tenant.id,
        "at": int(time.time()),
    }
    return redirect(authorize_url(_cfg(), state, challenge))


@bp.get("/money/mercadopago/callback")
@store_required
async def callback():
    """Mercado Pago sends the browser back with `code` and our `state`."""
    _owner_only()
    pending = session.pop(SESSION_KEY, None)  # single use, whatever happens next
    state = request.args.get("state", "")[:MAX_PARAM]
    if (
        not isinstance(pending, dict)
        or not secrets.compare_digest(str(pending.get("state", "")), state)
        or pending.get("tenant_id") != g.tenant.id
        or time.time() - int(pending.get("at", 0)) > STATE_TTL_S
    ):
        log.warning("mercadopago connect: bad or replayed state from %s", client_ip())
        return await _page(_("mpconnect.bad_state"), 400)
    if request.args.get("error"):
        return await _page(_("mpconnect.denied"), 200)
    code = request.args.get("code", "")[:MAX_PARAM]
    if not code:
        return await _page(_("mpconnect.bad_state"), 400)
    settings = current_app.config["VITRINE_SETTINGS"]
    oauth = MercadoPagoOAuth(settings.mp_connect, settings.mercadopago_api_base)
    try:
        grant = await oauth.exchange_code(code, str(pending.get("verifier", "")))
    except MPOAuthError as exc:
        log.warning("mercadopago connect for store %s failed: %s", g.tenant.id, exc)
        return await _page(_("mpconnect.failed", error=exc.error), 400)
    await connected.connect(vault(), g.tenant.id, grant, actor())
    await say("mpconnect.connected", user=grant.user_id)
    return redirect(url_for("mp_connect.page"))


@bp.post("/money/mercadopago/disconnect")
@store_required
async def disconnect():
    _owner_only()
    if await connected.disconnect(g.tenant.id, actor()):
        await say("mpconnect.disconnected")
    return redirect(url_for("mp_connect.page"))

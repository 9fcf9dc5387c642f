"""OAuth pages and token endpoint of the Mercado Pago stand-in, and the accounts' balances.

- `GET /authorization?client_id&response_type=code&platform_id=mp&state&redirect_uri
  [&code_challenge&code_challenge_method=S256]`: the consent page (a form);
  `POST /authorization` sends the browser back to `redirect_uri?code=…&state=…`, or
  `?error=access_denied&state=…` when the seller refuses
  (mercadopago.com.br/developers/pt/docs/security/oauth/creation).
- `POST /oauth/token`: a JSON body, grant types `authorization_code` and `refresh_token`
  (developers/en/reference/oauth/_oauth_token/post); errors as Mercado Pago answers them.
- Control: `GET /_sandbox/mp/accounts` (each account's balance in centavos: a payment lands in
  its collector's account less Mercado Pago's fee and the `application_fee`, which goes to the
  platform's account, `config.user_id`; refunds take back proportionally, the marketplace
  split described in developers/en/docs/split-payments/integration-configuration/
  integrate-marketplace), `POST /_sandbox/mp/oauth/revoke {"user_id"}` (the seller revokes
  the application in their account), `POST /_sandbox/mp/oauth/config {"token_ttl_seconds"}`.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from .errors import MPError, bad_request
from .keys import MP_OAUTH, MP_STATE
from .routes import read_json
from .state import MPState
from .util import fee_cents

PREFIX = "/_sandbox/mp"
AUTH_PARAMS = ("client_id", "state", "redirect_uri", "code_challenge", "code_challenge_method")


def _oauth_error(error: str, message: str, status: int = 400) -> MPError:
    return MPError(status, error, message)


def _checked_authorization(params: Any) -> dict[str, str]:
    values = {k: str(params.get(k) or "")[:500] for k in AUTH_PARAMS}
    if params.get("response_type") != "code" or not values["client_id"]:
        raise bad_request("response_type=code and client_id are required", "invalid_request")
    if urlsplit(values["redirect_uri"]).scheme not in ("http", "https"):
        raise bad_request("redirect_uri must be an http(s) URL", "invalid_request")
    if values["code_challenge"] and values["code_challenge_method"] != "S256":
        raise bad_request("code_challenge_method must be S256", "invalid_request")
    return values


async def authorization_page(request: web.Request) -> web.Response:
    """GET /authorization: the consent page."""
    values = _checked_authorization(request.query)
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in values.items()
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Mercado Pago sandbox</title>"
        "</head><body><h1>Authorise application "
        f"{html.escape(values['client_id'])}?</h1><form method='post' action='/authorization'>"
        f"{hidden}<input type='hidden' name='response_type' value='code'>"
        "<label>Seller user id <input name='user_id' placeholder='new seller'></label>"
        "<button name='decision' value='allow'>Allow</button>"
        "<button name='decision' value='deny'>Deny</button></form></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


async def authorize(request: web.Request) -> web.Response:
    """POST /authorization: the seller's answer; redirects back to the application."""
    form = await request.post()
    values = _checked_authorization(form)
    oauth = request.app[MP_OAUTH]
    back: dict[str, str] = {"state": values["state"]} if values["state"] else {}
    if form.get("decision") == "deny":
        back = {"error": "access_denied", **back}
    else:
        raw_user = str(form.get("user_id") or "")
        user = int(raw_user) if raw_user.isdigit() else oauth.new_seller()
        code = oauth.issue_code(
            user,
            values["client_id"],
            values["redirect_uri"],
            values["code_challenge"] or None,
            request.app[MP_STATE].now(),
        )
        back = {"code": code, **back}
    sep = "&" if "?" in values["redirect_uri"] else "?"
    raise web.HTTPFound(f"{values['redirect_uri']}{sep}{urlencode(back)}")


async def token(request: web.Request) -> web.Response:
    """POST /oauth/token."""
    if request.query:
        raise _oauth_error("invalid_request", "parameters go in the body, not the query")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _oauth_error("invalid_request", "a JSON object is required")
    oauth, state = request.app[MP_OAUTH], request.app[MP_STATE]
    client_id = str(body.get("client_id") or "")
    if not oauth.client_ok(client_id, str(body.get("client_secret") or "")):
        raise _oauth_error("invalid_client", "invalid client_id or client_secret")
    grant = body.get("grant_type")
    now = state.now()
    if grant == "authorization_code":
        user = oauth.redeem_code(
            str(body.get("code") or ""),
            client_id,
            str(body.get("redirect_uri") or ""),
            body.get("code_verifier"),
            now,
        )
    elif grant == "refresh_token":
        user = oauth.redeem_refresh(str(body.get("refresh_token") or ""), now)
    else:
        raise _oauth_error("unsupported_grant_type", "grant_type not supported")
    if user is None:
        raise _oauth_error("invalid_grant", "invalid, expired or already used grant")
    access, refresh = oauth.issue_tokens(user, client_id, now)
    return web.json_response(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(oauth.token_ttl.total_seconds()),
            "scope": "offline_access read write",
            "user_id": user,
            "refresh_token": refresh,
            "public_key": f"APP_USR-{access[-12:]}",
            "live_mode": False,
        }
    )


def balances(state: MPState) -> dict[int, int]:
    """Each account's balance in centavos, from the payments (see the module docstring)."""
    out: dict[int, int] = defaultdict(int)
    platform = state.config.user_id
    for p in state.payments.values():
        if p.approved is None:
            continue
        app_fee = p.application_fee_cents
        out[p.collector_id] += (
            p.amount_cents - fee_cents(p.amount_cents, state.config.fee_basis_points) - app_fee
        )
        out[platform] += app_fee
        taken = p.amount_cents if p.status == "charged_back" else p.refunded_cents
        fee_back = app_fee * taken // p.amount_cents if p.amount_cents else 0
        out[p.collector_id] -= taken - fee_back
        out[platform] -= fee_back
    return dict(out)


async def accounts(request: web.Request) -> web.Response:
    """GET /_sandbox/mp/accounts: {"<user id>": {"balance_cents": n}}."""
    found = balances(request.app[MP_STATE])
    found.setdefault(request.app[MP_STATE].config.user_id, 0)
    return web.json_response({str(u): {"balance_cents": c} for u, c in found.items()})


async def revoke(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/oauth/revoke {"user_id": n}."""
    body = await read_json(request)
    user = body.get("user_id") if isinstance(body, dict) else None
    if not isinstance(user, int):
        raise bad_request("user_id must be an integer", "invalid_revoke")
    return web.json_response({"revoked": request.app[MP_OAUTH].revoke_user(user)})


async def configure(request: web.Request) -> web.Response:
    """POST /_sandbox/mp/oauth/config {"token_ttl_seconds": n}: shorter-lived tokens."""
    body = await read_json(request)
    ttl = body.get("token_ttl_seconds") if isinstance(body, dict) else None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise bad_request("token_ttl_seconds must be a positive integer", "invalid_config")
    request.app[MP_OAUTH].token_ttl = timedelta(seconds=ttl)
    return web.json_response({"token_ttl_seconds": ttl})


def setup_oauth(app: web.Application) -> None:
    """Register the OAuth pages, the token endpoint and their control routes."""
    r = app.router
    r.add_get("/authorization", authorization_page)
    r.add_post("/authorization", authorize)
    r.add_post("/oauth/token", token)
    r.add_get(f"{PREFIX}/accounts", accounts)
    r.add_post(f"{PREFIX}/oauth/revoke", revoke)
    r.add_post(f"{PREFIX}/oauth/config", configure)

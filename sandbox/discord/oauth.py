"""OAuth2 authorization-code flow: authorize page, token, refresh, revoke."""

from __future__ import annotations

import base64
import html
import secrets
import time
from urllib.parse import urlencode

from aiohttp import web

from sandbox.discord.http_util import json_response, state_of
from sandbox.discord.models import OAuthApp, OAuthGrant, OAuthToken
from sandbox.discord.state import DiscordState

SCOPES = {
    "identify",
    "email",
    "guilds",
    "guilds.join",
    "guilds.members.read",
    "connections",
    "bot",
    "applications.commands",
}


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return json_response({"error": error, "error_description": description}, status)


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in uri else "?"
    raise web.HTTPFound(uri + sep + urlencode({k: v for k, v in params.items() if v}))


def _check_authorize(
    state: DiscordState, query: dict[str, str]
) -> tuple[OAuthApp, str] | web.Response:
    app = state.oauth_apps.get(query.get("client_id", ""))
    if app is None:
        return json_response({"message": "Unknown Application", "code": 10002}, 400)
    redirect_uri = query.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris else "")
    if redirect_uri not in app.redirect_uris:
        return json_response({"message": "Invalid OAuth2 redirect_uri", "code": 50035}, 400)
    if query.get("response_type", "code") != "code":
        _redirect(
            redirect_uri, {"error": "unsupported_response_type", "state": query.get("state", "")}
        )
    scopes = query.get("scope", "identify").split()
    if not scopes or not set(scopes) <= SCOPES:
        _redirect(
            redirect_uri,
            {
                "error": "invalid_scope",
                "state": query.get("state", ""),
                "error_description": "The requested scope is invalid.",
            },
        )
    return app, redirect_uri


async def authorize(request: web.Request) -> web.Response:
    """GET /oauth2/authorize: consent page, or immediate redirect with sandbox_user/decision."""
    state = state_of(request)
    query = dict(request.query)
    checked = _check_authorize(state, query)
    if isinstance(checked, web.Response):
        return checked
    app, redirect_uri = checked
    st = query.get("state", "")
    if query.get("decision") == "deny":
        _redirect(
            redirect_uri,
            {
                "error": "access_denied",
                "state": st,
                "error_description": "The resource owner or authorization "
                "server denied the request",
            },
        )
    user_id = query.get("sandbox_user")
    if user_id:
        if user_id not in state.users or state.users[user_id].bot:
            return json_response({"message": "Unknown User", "code": 10013}, 400)
        code = secrets.token_urlsafe(20)
        state.oauth_grants[code] = _grant(state, code, app, user_id, query, redirect_uri)
        _redirect(redirect_uri, {"code": code, "state": st})
    return _consent_page(state, app, query)


def _grant(
    state: DiscordState,
    code: str,
    app: OAuthApp,
    user_id: str,
    query: dict[str, str],
    redirect_uri: str,
) -> OAuthGrant:
    return OAuthGrant(
        code,
        app.client_id,
        user_id,
        query.get("scope", "identify"),
        query.get("redirect_uri") and redirect_uri,
        time.time() + state.config.oauth_code_ttl_s,
    )


def _consent_page(state: DiscordState, app: OAuthApp, query: dict[str, str]) -> web.Response:
    def link(**extra: str) -> str:
        return "/oauth2/authorize?" + html.escape(urlencode({**query, **extra}))

    users = [u for u in state.users.values() if not u.bot]
    items = "".join(
        f'<li><a class="user" data-user-id="{u.id}" href="{link(sandbox_user=u.id)}">'
        f"{html.escape(u.global_name or u.username)} ({html.escape(u.username)})</a></li>"
        for u in users
    )
    body = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Sandbox Discord '
        f"authorize</title></head><body><h1>{html.escape(app.name)} wants to access your "
        f"account</h1><p>Scopes: {html.escape(query.get('scope', 'identify'))}</p>"
        f"<p>Log in as:</p><ul>{items or '<li>(no sandbox users yet)</li>'}</ul>"
        f'<p><a id="deny" href="{link(decision="deny")}">Cancel (deny)</a></p></body></html>'
    )
    return web.Response(text=body, content_type="text/html")


def _client_auth(
    request: web.Request, form: dict[str, str], state: DiscordState
) -> OAuthApp | None:
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
    app = state.oauth_apps.get(client_id)
    if app is None or not secrets.compare_digest(app.client_secret, secret):
        return None
    return app


async def token(request: web.Request) -> web.Response:
    """POST /api/oauth2/token: form-encoded only, authorization_code or refresh_token."""
    state = state_of(request)
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            "unsupported_grant_type"
            if request.content_type == "application/json"
            else "invalid_request",
            "Request body must be application/x-www-form-urlencoded.",
        )
    form = {k: str(v) for k, v in (await request.post()).items()}
    app = _client_auth(request, form, state)
    if app is None:
        return _oauth_error("invalid_client", 'Invalid "client_id" or secret.', 401)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(state, app, form)
    if grant_type == "refresh_token":
        return _refresh(state, app, form)
    return _oauth_error("unsupported_grant_type", "Unsupported grant type")


def _token_body(tok: OAuthToken) -> web.Response:
    return json_response(
        {
            "access_token": tok.access_token,
            "token_type": "Bearer",
            "expires_in": int(tok.expires - time.time()),
            "refresh_token": tok.refresh_token,
            "scope": tok.scope,
        }
    )


def _exchange_code(state: DiscordState, app: OAuthApp, form: dict[str, str]) -> web.Response:
    grant = state.oauth_grants.get(form.get("code", ""))
    bad = _oauth_error("invalid_grant", 'Invalid "code" in request.')
    if grant is None or grant.used or grant.client_id != app.client_id:
        return bad
    if grant.expires < time.time():
        return bad
    if grant.redirect_uri and form.get("redirect_uri") != grant.redirect_uri:
        return _oauth_error("invalid_grant", 'Invalid "redirect_uri" in request.')
    grant.used = True
    return _token_body(state.issue_token(app.client_id, grant.user_id, grant.scope))


def _refresh(state: DiscordState, app: OAuthApp, form: dict[str, str]) -> web.Response:
    access = state.oauth_refresh.pop(form.get("refresh_token", ""), None)
    old = state.oauth_tokens.get(access or "")
    if old is None or old.revoked or old.client_id != app.client_id:
        return _oauth_error("invalid_grant", 'Invalid "refresh_token" in request.')
    old.revoked = True
    return _token_body(state.issue_token(app.client_id, old.user_id, old.scope))


async def revoke(request: web.Request) -> web.Response:
    """POST /api/oauth2/token/revoke: revokes the whole authorization."""
    state = state_of(request)
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error("invalid_request", "Body must be form-encoded.")
    form = {k: str(v) for k, v in (await request.post()).items()}
    app = _client_auth(request, form, state)
    if app is None:
        return _oauth_error("invalid_client", "Invalid client.", 401)
    value = form.get("token", "")
    tok = state.oauth_tokens.get(value) or state.oauth_tokens.get(
        state.oauth_refresh.get(value, "")
    )
    if tok is not None and tok.client_id == app.client_id:
        for other in state.oauth_tokens.values():
            if other.user_id == tok.user_id and other.client_id == app.client_id:
                other.revoked = True
    return json_response({})


API_ROUTES = [
    ("POST", "/oauth2/token", token),
    ("POST", "/oauth2/token/revoke", revoke),
]
PAGE_ROUTES = [
    ("GET", "/oauth2/authorize", authorize),
    ("GET", "/api/oauth2/authorize", authorize),
]

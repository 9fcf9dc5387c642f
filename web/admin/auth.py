"""Authentication for every admin route: a bearer token (several allowed, for rotation), or —
for the console's pages only — the same token entered once and kept in a signed session.

The console uses the helpers here; this module needs only the console's login form, which
lives in `web.admin.login` so that neither imports the other's module in a cycle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from quart import Quart, g, jsonify, request, session

from core.settings import Settings
from web.admin.login import login_page
from web.probes import PROBE_PATHS

# Kubernetes probes carry no token (they tell only whether the process and its DB/Redis answer).
PUBLIC_PATHS = frozenset({"/favicon.ico"}) | PROBE_PATHS
# The console's login form must be reachable without a session (it answers 401 to a bad token).
PUBLIC_ENDPOINTS = frozenset({"console.login"})
SESSION_LIFETIME = timedelta(hours=12)


def token_label(token: str) -> str:
    """A stable, non-secret name for a token in the audit log."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:8]


def check_token(presented: str, tokens: tuple[str, ...]) -> str | None:
    """The matching token's label, comparing against every token in constant time."""
    match = None
    for token in tokens:
        if hmac.compare_digest(presented.encode(), token.encode()):
            match = token
    return token_label(match) if match else None


def is_console_path(path: str) -> bool:
    """Pages of the HTML console (the JSON API, /metrics and /openapi.json are bearer-only)."""
    return path == "/" or path.startswith("/console")


def session_secret(tokens: tuple[str, ...]) -> str:
    """The console cookie's signing key, derived from the admin tokens: rotating the tokens
    logs every console session out."""
    material = "\0".join(sorted(tokens)).encode()
    return hmac.new(b"vitrine-admin-console", material, hashlib.sha256).hexdigest()


def start_console_session(label: str) -> None:
    session.clear()
    session.permanent = True
    session["label"] = label
    session["csrf"] = secrets.token_urlsafe(24)


def _bearer_label(settings: Settings) -> str | None:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        return check_token(presented.strip(), settings.admin_api_tokens)
    return None


def _session_label(settings: Settings) -> str | None:
    label = session.get("label")
    valid = {token_label(t) for t in settings.admin_api_tokens}
    return label if isinstance(label, str) and label in valid else None


async def _unauthorized():
    if is_console_path(request.path) and request.method == "GET":
        return await login_page(status=401)
    response = jsonify(
        {
            "error": "unauthorized",
            "message": "missing or invalid admin token (Authorization: Bearer <ADMIN_API_TOKEN>)",
        }
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="vitrine-admin"'
    return response, 401


def install_auth(app: Quart, settings: Settings) -> None:
    """Require a token (or, on console pages, a session) on every route but the public ones."""
    app.secret_key = session_secret(settings.admin_api_tokens)
    app.config.update(
        SESSION_COOKIE_NAME="vitrine_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )

    @app.before_request
    async def _require_token():
        if request.path in PUBLIC_PATHS or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        label = _bearer_label(settings)
        if label is None and is_console_path(request.path):
            label = _session_label(settings)
            g.console = label is not None
        if label is None:
            return await _unauthorized()
        g.actor = f"admin:{label}"
        return None

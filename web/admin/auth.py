"""Bearer-token authentication for every admin route (several tokens allowed, for rotation)."""

from __future__ import annotations

import hashlib
import hmac

from quart import Quart, g, jsonify, request

from core.settings import Settings

PUBLIC_PATHS = frozenset({"/favicon.ico"})


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


def install_auth(app: Quart, settings: Settings) -> None:
    @app.before_request
    async def _require_token():  # type: ignore[no-untyped-def]
        if request.path in PUBLIC_PATHS:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        label = None
        if scheme.lower() == "bearer" and presented:
            label = check_token(presented.strip(), settings.admin_api_tokens)
        if label is None:
            response = jsonify({"error": "unauthorized",
                                "message": "missing or invalid admin token "
                                           "(Authorization: Bearer <ADMIN_API_TOKEN>)"})
            response.headers["WWW-Authenticate"] = 'Bearer realm="vitrine-admin"'
            return response, 401
        g.actor = f"admin:{label}"
        return None

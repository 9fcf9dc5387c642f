"""Mercado Pago OAuth (authorization code with PKCE, refresh) for seller-connected accounts.

Wire facts, from Mercado Pago's docs:
- authorise: `https://auth.mercadopago.com.br/authorization?client_id=…&response_type=code
  &platform_id=mp&state=…&redirect_uri=…`; PKCE (`code_challenge`, `code_challenge_method=S256`)
  is optional and recommended (developers/pt/docs/security/oauth/creation).
- token: `POST https://api.mercadopago.com/oauth/token`, a JSON body (never query parameters)
  with `client_id`, `client_secret`, `grant_type` (`authorization_code` or `refresh_token`),
  `code`, `redirect_uri`, `code_verifier`, `refresh_token`; the answer has `access_token`,
  `token_type: bearer`, `expires_in` (15552000 s = 180 days), `scope`, `user_id`,
  `refresh_token`, `public_key`, `live_mode`. A code is valid for 10 minutes; a used, expired
  or foreign code or refresh token is 400 `invalid_grant`; 429 `local_rate_limited`
  (developers/en/reference/oauth/_oauth_token/post, developers/en/docs/security/oauth/
  best-practices).
- revoking: Mercado Pago documents no revoke endpoint for applications; a seller revokes the
  authorisation in their Mercado Pago account (developers/en/docs/security/oauth/management).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from core.mp_connect_settings import MPConnectSettings
from core.vault import SecretToken
from shop.errors import ShopError
from shop.payments.mp_http import _retry_after, json_object, shared_ssl_context

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class MPOAuthError(ShopError):
    """Mercado Pago refused the authorisation (`error` is its code, e.g. invalid_grant)."""

    code = "mp_oauth_error"
    message_key = "mpconnect.error.oauth"

    def __init__(self, status: int, error: str) -> None:
        self.status = status
        self.error = error
        super().__init__(f"Mercado Pago OAuth answered {status} {error}")


@dataclass(frozen=True)
class Grant:
    """What the token endpoint gave: the seller's tokens (hidden from logs) and account."""

    access_token: SecretToken
    refresh_token: SecretToken
    user_id: str
    expires_at: datetime
    scope: str
    public_key: str
    live_mode: bool


def new_pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 defines them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(cfg: MPConnectSettings, state: str, code_challenge: str) -> str:
    """Where the seller's browser goes to authorise the platform's application."""
    query = {
        "client_id": cfg.client_id,
        "response_type": "code",
        "platform_id": "mp",
        "state": state,
        "redirect_uri": cfg.redirect_uri,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{cfg.auth_base}/authorization?{urlencode(query)}"


def _grant(body: Any) -> Grant:
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("user_id"):
        raise MPOAuthError(502, "malformed_token_response")
    expires_in = int(body.get("expires_in") or 0)
    return Grant(
        access_token=SecretToken(str(body["access_token"])),
        refresh_token=SecretToken(str(body.get("refresh_token") or "")),
        user_id=str(body["user_id"])[:32],
        expires_at=datetime.now(UTC) + timedelta(seconds=max(0, expires_in)),
        scope=str(body.get("scope") or "")[:200],
        public_key=str(body.get("public_key") or "")[:120],
        live_mode=bool(body.get("live_mode")),
    )


class MercadoPagoOAuth:
    """The token endpoint, with the platform's client credentials."""

    def __init__(self, cfg: MPConnectSettings, api_base: str, timeout: float = 10.0) -> None:
        self.cfg = cfg
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    async def exchange_code(self, code: str, code_verifier: str) -> Grant:
        """`grant_type=authorization_code`: the seller just authorised us."""
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.cfg.redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    async def refresh(self, refresh_token: SecretToken) -> Grant:
        """`grant_type=refresh_token`: a new access token (and a new refresh token)."""
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}
        )

    async def _token(self, fields: dict[str, str]) -> Grant:
        body = {"client_id": self.cfg.client_id, "client_secret": self.cfg.client_secret, **fields}
        async with httpx.AsyncClient(
            base_url=self.api_base, timeout=self.timeout, verify=shared_ssl_context()
        ) as http:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    response = await http.post(
                        "/oauth/token",
                        json=body,
                        headers={"Accept": "application/json", "User-Agent": "vitrine/0.1"},
                    )
                except httpx.ConnectError as exc:  # never sent: safe to try again
                    log.warning("mercadopago oauth: %s", type(exc).__name__)
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                except httpx.TransportError as exc:  # maybe used: a refresh token is single use
                    raise MPOAuthError(0, f"transport_error: {type(exc).__name__}") from None
                if response.status_code == 429 and attempt + 1 < MAX_ATTEMPTS:
                    await asyncio.sleep(min(_retry_after(response) or 1.0, 10.0))
                    continue
                if response.status_code >= 400:
                    raise MPOAuthError(response.status_code, _error_code(response))
                return _grant(response.json())
        raise MPOAuthError(0, "unreachable")


def _error_code(response: httpx.Response) -> str:
    error = json_object(response).get("error")
    return str(error or response.reason_phrase or "error")[:60]

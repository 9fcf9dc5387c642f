"""The sandbox's OAuth side: the platform application's client, authorisation codes, and
the tokens it issued to sellers (so the API can refuse expired or revoked ones).

Mercado Pago's rules it follows (developers/en/reference/oauth/_oauth_token/post,
developers/en/docs/security/oauth/creation): a code is valid for 10 minutes and works once;
the exchange must repeat the authorisation's `redirect_uri`; PKCE `code_verifier` is checked
against the S256 `code_challenge` when one was sent; a used, expired or foreign code or
refresh token is 400 `invalid_grant`; bad client credentials are 400 `invalid_client`;
`expires_in` is 15552000 s (180 days); an access token reads `APP_USR-<client>-<MMddHH>-<hash>-
<user id>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SANDBOX_CLIENT_ID = "4934588586838432"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"  # noqa: S105 - the stand-in's own test value
CODE_TTL = timedelta(minutes=10)
FIRST_SELLER_ID = 2_000_000_001


@dataclass
class AuthCode:
    user_id: int
    client_id: str
    redirect_uri: str
    challenge: str | None
    issued: datetime
    used: bool = False


@dataclass
class IssuedToken:
    user_id: int
    expires: datetime
    revoked: bool = False


@dataclass
class OAuthRegistry:
    """Clients, codes and tokens; `reset` forgets everything but the default client."""

    clients: dict[str, str] = field(default_factory=dict)
    token_ttl: timedelta = timedelta(seconds=15_552_000)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    access: dict[str, IssuedToken] = field(default_factory=dict)
    refresh: dict[str, IssuedToken] = field(default_factory=dict)
    next_seller: int = FIRST_SELLER_ID

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.clients = {SANDBOX_CLIENT_ID: SANDBOX_CLIENT_SECRET}
        self.token_ttl = timedelta(seconds=15_552_000)
        self.codes, self.access, self.refresh = {}, {}, {}
        self.next_seller = FIRST_SELLER_ID

    def new_seller(self) -> int:
        user = self.next_seller
        self.next_seller += 1
        return user

    def issue_code(
        self, user_id: int, client_id: str, redirect_uri: str, challenge: str | None, now: datetime
    ) -> str:
        code = f"TG-{secrets.token_hex(12)}-{user_id}"
        self.codes[code] = AuthCode(user_id, client_id, redirect_uri, challenge, now)
        return code

    def client_ok(self, client_id: str, secret: str) -> bool:
        expected = self.clients.get(client_id)
        return expected is not None and hmac.compare_digest(expected, secret)

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str, verifier: str | None, now: datetime
    ) -> int | None:
        """The seller's user id, or None (invalid_grant). A code works once, even on failure."""
        found = self.codes.get(code)
        if found is None or found.used or now - found.issued > CODE_TTL:
            return None
        found.used = True
        if found.client_id != client_id or found.redirect_uri != redirect_uri:
            return None
        if found.challenge is not None and (
            verifier is None or not hmac.compare_digest(_s256(verifier), found.challenge)
        ):
            return None
        return found.user_id

    def redeem_refresh(self, token: str, now: datetime) -> int | None:
        """The user id of a live refresh token, which is spent (single use)."""
        found = self.refresh.pop(token, None)
        if found is None or found.revoked or found.expires <= now:
            return None
        return found.user_id

    def issue_tokens(self, user_id: int, client_id: str, now: datetime) -> tuple[str, str]:
        access = f"APP_USR-{client_id}-{now:%m%d%H}-{secrets.token_hex(8)}-{user_id}"
        refresh = f"TG-{secrets.token_hex(12)}-{user_id}"
        self.access[access] = IssuedToken(user_id, now + self.token_ttl)
        self.refresh[refresh] = IssuedToken(user_id, now + self.token_ttl)
        return access, refresh

    def problem(self, token: str, now: datetime) -> str | None:
        """Why an issued access token no longer works (None: fine, or not one we issued)."""
        found = self.access.get(token)
        if found is None:
            return None
        if found.revoked:
            return "the seller revoked this application's access"
        if found.expires <= now:
            return "expired access token"
        return None

    def revoke_user(self, user_id: int) -> int:
        """The seller revokes the application in their account: every token stops working."""
        count = 0
        for table in (self.access, self.refresh):
            for issued in table.values():
                if issued.user_id == user_id and not issued.revoked:
                    issued.revoked = True
                    count += 1
        return count


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

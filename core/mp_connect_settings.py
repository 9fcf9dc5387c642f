"""Settings of seller-connected Mercado Pago accounts (issue 20): the platform's Mercado Pago
application (OAuth client) that sellers authorise. Filled by `core.settings.load_settings`;
all optional: without a client id and secret the portal does not offer "Conectar Mercado
Pago". See docs/configuration.md, "Seller-connected Mercado Pago accounts"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from core.errors import ConfigError

Get = Callable[[str], str | None]
CALLBACK_PATH = "/money/mercadopago/callback"


@dataclass(frozen=True)
class MPConnectSettings:
    """The OAuth client sellers authorise, and when their tokens are renewed."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    redirect_uri: str = ""
    # Where the seller's browser authorises (auth.mercadopago.com.br/authorization); the token
    # endpoint is MERCADOPAGO_API_BASE/oauth/token.
    auth_base: str = "https://auth.mercadopago.com.br"
    # Tokens live 180 days (expires_in 15552000); renewed this many days before they expire.
    refresh_before_days: int = 30

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.client_secret and self.redirect_uri)


def _http_url(get: Get, name: str, default: str, example: str) -> str:
    raw = get(name) or default
    if not raw:
        return ""
    parts = urlparse(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(raw) > 300:
        raise ConfigError(name, f"{raw[:40]!r} is not an http(s) URL", example)
    return raw.rstrip("/")


def load_mp_connect_settings(get: Get, public_base_url: str) -> MPConnectSettings:
    """Read the MERCADOPAGO_CLIENT_* / _REDIRECT_URI / _OAUTH_BASE variables."""
    client_id = get("MERCADOPAGO_CLIENT_ID") or ""
    if client_id and (len(client_id) > 64 or not client_id.replace("-", "").isalnum()):
        raise ConfigError("MERCADOPAGO_CLIENT_ID", "is not an application id", "1234567890123456")
    raw_days = get("MERCADOPAGO_REFRESH_BEFORE_DAYS") or "30"
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 170:
        raise ConfigError("MERCADOPAGO_REFRESH_BEFORE_DAYS", f"{raw_days[:10]!r} not 1..170", "30")
    return MPConnectSettings(
        client_id=client_id,
        client_secret=get("MERCADOPAGO_CLIENT_SECRET") or "",
        redirect_uri=_http_url(
            get,
            "MERCADOPAGO_REDIRECT_URI",
            f"{public_base_url.rstrip('/')}{CALLBACK_PATH}",
            f"https://loja.example.com.br{CALLBACK_PATH}",
        ),
        auth_base=_http_url(
            get,
            "MERCADOPAGO_OAUTH_BASE",
            "https://auth.mercadopago.com.br",
            "https://auth.mercadopago.com.br",
        ),
        refresh_before_days=int(raw_days),
    )

"""Typed settings, filled from the environment (and an optional `.env`) in one function.

Every process calls `load_settings()` once at start-up. A missing or malformed value raises
`ConfigError`, whose one-line message names the variable and shows a good value; entry points
print it and exit with `ExitCode.CONFIG` (see `core.bootstrap.load_settings_or_exit`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

from core.errors import ConfigError
from core.mp_connect_settings import MPConnectSettings, load_mp_connect_settings
from core.notify_settings import NotifySettings, load_notify_settings
from core.payout_settings import load_payout_signing_key
from core.secrets_store import GENERATED_SECRETS, load_or_create_secrets

EMBEDDED_REDIS_PORT = 6390
EMBEDDED_REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
ENVIRONMENTS = ("development", "production")
ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    """Every setting of the platform; see docs/configuration.md."""

    environment: str
    data_dir: Path
    log_dir: Path
    database_url: str
    redis_url: str
    portal_port: int
    admin_port: int
    admin_bind: str
    portal_bind: str
    portal_session_secret: str = field(repr=False)
    admin_api_tokens: tuple[str, ...] = field(repr=False)
    token_encryption_keys: tuple[str, ...] = field(repr=False)
    discord_client_id: str
    discord_client_secret: str = field(repr=False)
    discord_api_base: str
    discord_oauth_base: str
    mercadopago_access_token: str = field(repr=False)
    mercadopago_webhook_secret: str = field(repr=False)
    stock_hash_key: str = field(repr=False)
    mercadopago_api_base: str
    public_base_url: str
    platform_fee_bps: int
    withdrawal_hold_days: int
    log_level: str
    default_locale: str
    # Peers whose X-Forwarded-For/-Proto/-Host are believed (the TLS proxy); empty = nobody.
    trusted_proxies: tuple[ProxyNetwork, ...] = ()
    # Mercado Pago webhook endpoint (see docs/payments.md, "Flood protection").
    webhook_retention_days: int = 30  # processed webhook_events older than this are pruned
    webhook_rate_limit_per_minute: int = 600  # unsigned/bad deliveries per client address
    webhook_forgery_alert_per_minute: int = 120  # bad signatures/min that raise an alert
    delivery_relay_interval_ms: int = 500  # the reconciler's outbox relay (shop.outbox)
    # Requests per minute (all processes) polling open PIX charges and answering the buyers'
    # "Verificar pagamento" (shop.payments.payment_polling). Mercado Pago publishes no rate limit.
    mp_poll_budget_per_min: int = 120
    # The Mercado Pago API new PIX charges are created with: "payments" (/v1/payments, what an
    # unset value means, so existing installs do not move) or "orders" (/v1/orders, what the
    # deployment template writes for new installs). A charge stays on its API (docs/payments.md).
    mercadopago_api: str = "payments"
    # PAYOUT_MODE=automatic: an approved withdrawal is paid by the platform through Mercado
    # Pago's money-out API (shop.payouts); "manual" (the default): an operator sends the PIX.
    payouts_automatic: bool = False
    # The Ed25519 private key (PEM) that signs money-out requests (core.payout_settings).
    payout_signing_key: bytes | None = field(default=None, repr=False)
    # Operators' alert channels and the alert checks (core.notify_settings, issue 18).
    notify: NotifySettings = field(default_factory=NotifySettings)
    # Seller-connected Mercado Pago accounts: the OAuth client (core.mp_connect_settings).
    mp_connect: MPConnectSettings = field(default_factory=MPConnectSettings)

    @property
    def embedded_redis(self) -> bool:
        """True when REDIS_URL points at the redis-server Vitrine runs itself."""
        return self.redis_url.rstrip("/") in (EMBEDDED_REDIS_URL, EMBEDDED_REDIS_URL[:-2])

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def platform_fee_percent(self) -> Decimal:
        return Decimal(self.platform_fee_bps) / 100


class _Env:
    """Reads raw values: process environment first, then `.env`, then generated secrets."""

    def __init__(self, environ: Mapping[str, str], dotenv: Mapping[str, str | None]) -> None:
        self._environ = environ
        self._dotenv = dotenv
        self.generated: dict[str, str] = {}

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._environ.get(name)
        if value is None:
            value = self._dotenv.get(name)
        if value is None:
            value = self.generated.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()


def _int(env: _Env, name: str, default: int, lo: int, hi: int, example: str) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"{raw!r} is not a whole number", example) from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"{value} is outside {lo}..{hi}", example)
    return value


def _url(env: _Env, name: str, default: str, schemes: tuple[str, ...], example: str) -> str:
    raw = env.get(name, default)
    assert raw is not None  # default is a str
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise ConfigError(name, f"{raw!r} is not a {'/'.join(schemes)} URL", example)
    return raw.rstrip("/")


def _fee_bps(env: _Env) -> int:
    raw = env.get("PLATFORM_FEE_PERCENT", "5")
    assert raw is not None
    try:
        value = Decimal(raw.replace(",", "."))
    except InvalidOperation:
        raise ConfigError("PLATFORM_FEE_PERCENT", f"{raw!r} is not a number", "5.5") from None
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(100):
        raise ConfigError("PLATFORM_FEE_PERCENT", f"{raw} is outside 0..100", "5.5")
    bps = value * 100
    if bps != bps.to_integral_value():
        raise ConfigError("PLATFORM_FEE_PERCENT", "at most two decimal places", "5.25")
    return int(bps)


def _database_url(env: _Env, data_dir: Path) -> str:
    default = f"sqlite://{data_dir / 'vitrine.sqlite3'}"
    raw = env.get("DATABASE_URL", default)
    assert raw is not None
    scheme = urlparse(raw).scheme
    if scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
        raise ConfigError(
            "DATABASE_URL",
            f"unsupported scheme {scheme!r}",
            "postgres://vitrine:secret@db:5432/vitrine or sqlite://data/vitrine.sqlite3",
        )
    if scheme == "postgresql":
        raw = "postgres" + raw[len("postgresql") :]
    return raw


def _trusted_proxies(env: _Env) -> tuple[ProxyNetwork, ...]:
    raw = env.get("TRUSTED_PROXIES", "") or ""
    if len(raw) > 4000:
        raise ConfigError("TRUSTED_PROXIES", "is too long", "127.0.0.1,10.0.0.0/8")
    networks = []
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                "TRUSTED_PROXIES",
                f"{item.strip()!r} is not an IP address or network",
                "127.0.0.1,10.0.0.0/8",
            ) from None
    return tuple(networks)


def _fernet_keys(env: _Env) -> tuple[str, ...]:
    from core.vault import validate_keys

    raw = env.get("TOKEN_ENCRYPTION_KEYS")
    if raw is None:
        raise ConfigError("TOKEN_ENCRYPTION_KEYS", "is not set", _KEY_EXAMPLE)
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    problem = validate_keys(keys)
    if problem:
        raise ConfigError("TOKEN_ENCRYPTION_KEYS", problem, _KEY_EXAMPLE)
    return keys


_KEY_EXAMPLE = "<new Fernet key>,<old Fernet key> (make a key: vitrine gen-key)"
_SECRET_MIN = 16


def _secret(env: _Env, name: str, example: str) -> str:
    value = env.get(name)
    if value is None:
        raise ConfigError(name, "is not set", example)
    if len(value) < _SECRET_MIN:
        raise ConfigError(name, f"is too short (at least {_SECRET_MIN} characters)", example)
    return value


def _tokens(env: _Env) -> tuple[str, ...]:
    raw = _secret(env, "ADMIN_API_TOKEN", "<long random token>[,<previous token>]")
    tokens = tuple(t.strip() for t in raw.split(",") if t.strip())
    short = [t for t in tokens if len(t) < _SECRET_MIN]
    if short:
        raise ConfigError(
            "ADMIN_API_TOKEN",
            f"every token needs at least {_SECRET_MIN} characters",
            "<long random token>[,<previous token>]",
        )
    return tokens


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> Settings:
    """Build `Settings` from the environment; raise `ConfigError` on the first bad value."""
    environ = os.environ if environ is None else environ
    dotenv: Mapping[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        dotenv = dotenv_values(env_file)
    env = _Env(environ, dotenv)

    environment = (env.get("VITRINE_ENV", "development") or "").lower()
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            "VITRINE_ENV", f"{environment!r} is not one of {ENVIRONMENTS}", "production"
        )
    data_dir = Path(env.get("DATA_DIR", "data") or "data")
    log_dir = Path(env.get("LOG_DIR", "logs") or "logs")
    if environment == "development":
        # Embedded default: secrets the operator did not set are generated once, kept in data/.
        missing = [name for name in GENERATED_SECRETS if env.get(name) is None]
        if missing:
            env.generated = load_or_create_secrets(data_dir, missing)

    admin_bind = env.get("ADMIN_BIND", "127.0.0.1") or "127.0.0.1"
    if not re.fullmatch(r"[0-9a-fA-F:.]+|localhost", admin_bind):
        raise ConfigError("ADMIN_BIND", f"{admin_bind!r} is not an IP address", "127.0.0.1")
    portal_bind = env.get("PORTAL_BIND", "0.0.0.0") or "0.0.0.0"  # noqa: S104 - public portal
    locale = env.get("DEFAULT_LOCALE", "pt-BR") or "pt-BR"
    if locale not in ("pt-BR", "en"):
        raise ConfigError("DEFAULT_LOCALE", f"{locale!r} is not pt-BR or en", "pt-BR")
    log_level = (env.get("LOG_LEVEL", "INFO") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("LOG_LEVEL", f"{log_level!r} is not a log level", "INFO")
    mercadopago_api = (env.get("MERCADOPAGO_API", "payments") or "payments").strip().lower()
    payout_mode = (env.get("PAYOUT_MODE", "manual") or "manual").lower()
    if payout_mode not in ("manual", "automatic"):
        raise ConfigError("PAYOUT_MODE", f"{payout_mode!r} is not manual or automatic", "manual")
    if mercadopago_api not in ("payments", "orders"):
        raise ConfigError(
            "MERCADOPAGO_API", f"{mercadopago_api!r} is not payments or orders", "orders"
        )

    settings = Settings(
        environment=environment,
        data_dir=data_dir,
        log_dir=log_dir,
        database_url=_database_url(env, data_dir),
        redis_url=_url(
            env,
            "REDIS_URL",
            EMBEDDED_REDIS_URL,
            ("redis", "rediss", "unix"),
            "redis://127.0.0.1:6379/0",
        ),
        portal_port=_int(env, "PORTAL_PORT", 3100, 1, 65535, "3100"),
        admin_port=_int(env, "ADMIN_PORT", 3000, 1, 65535, "3000"),
        admin_bind=admin_bind,
        portal_bind=portal_bind,
        portal_session_secret=_secret(env, "PORTAL_SESSION_SECRET", "<64 random characters>"),
        admin_api_tokens=_tokens(env),
        token_encryption_keys=_fernet_keys(env),
        discord_client_id=env.get("DISCORD_CLIENT_ID", "") or "",
        discord_client_secret=env.get("DISCORD_CLIENT_SECRET", "") or "",
        discord_api_base=_url(
            env,
            "DISCORD_API_BASE",
            "https://discord.com/api/v10",
            ("http", "https"),
            "https://discord.com/api/v10",
        ),
        discord_oauth_base=_url(
            env,
            "DISCORD_OAUTH_BASE",
            "https://discord.com",
            ("http", "https"),
            "https://discord.com",
        ),
        mercadopago_access_token=env.get("MERCADOPAGO_ACCESS_TOKEN", "") or "",
        mercadopago_webhook_secret=_secret(
            env, "MERCADOPAGO_WEBHOOK_SECRET", "<secret from the Mercado Pago panel>"
        ),
        stock_hash_key=_secret(env, "STOCK_HASH_KEY", "<64 random characters>"),
        mercadopago_api_base=_url(
            env,
            "MERCADOPAGO_API_BASE",
            "https://api.mercadopago.com",
            ("http", "https"),
            "https://api.mercadopago.com",
        ),
        public_base_url=_url(
            env,
            "PUBLIC_BASE_URL",
            "http://127.0.0.1:3100",
            ("http", "https"),
            "https://loja.example.com.br",
        ),
        platform_fee_bps=_fee_bps(env),
        withdrawal_hold_days=_int(env, "WITHDRAWAL_HOLD_DAYS", 7, 0, 180, "7"),
        log_level=log_level,
        default_locale=locale,
        mercadopago_api=mercadopago_api,
        payouts_automatic=payout_mode == "automatic",
        trusted_proxies=_trusted_proxies(env),
        webhook_retention_days=_int(env, "WEBHOOK_RETENTION_DAYS", 30, 1, 3650, "30"),
        webhook_rate_limit_per_minute=_int(
            env, "WEBHOOK_RATE_LIMIT_PER_MINUTE", 600, 1, 1_000_000, "600"
        ),
        webhook_forgery_alert_per_minute=_int(
            env, "WEBHOOK_FORGERY_ALERT_PER_MINUTE", 120, 1, 1_000_000, "120"
        ),
        delivery_relay_interval_ms=_int(env, "DELIVERY_RELAY_INTERVAL_MS", 500, 50, 10_000, "500"),
        mp_poll_budget_per_min=_int(env, "VITRINE_MP_POLL_BUDGET_PER_MIN", 120, 0, 100_000, "120"),
        notify=load_notify_settings(env.get),
        mp_connect=load_mp_connect_settings(
            env.get, env.get("PUBLIC_BASE_URL", "http://127.0.0.1:3100") or ""
        ),
    )
    settings = replace(
        settings,
        payout_signing_key=load_payout_signing_key(
            env.get, automatic=settings.payouts_automatic, api_base=settings.mercadopago_api_base
        ),
    )
    if environment == "production":
        _require_production_values(settings)
    return settings


def _require_production_values(settings: Settings) -> None:
    """Production has no embedded defaults for the outside services' credentials."""
    required = {
        "MERCADOPAGO_ACCESS_TOKEN": (settings.mercadopago_access_token, "APP_USR-123..."),
        "DISCORD_CLIENT_ID": (settings.discord_client_id, "1234567890123456789"),
        "DISCORD_CLIENT_SECRET": (settings.discord_client_secret, "<OAuth2 client secret>"),
    }
    for name, (value, example) in required.items():
        if not value:
            raise ConfigError(name, "is required when VITRINE_ENV=production", example)
    if settings.public_base_url.startswith("http://"):
        raise ConfigError(
            "PUBLIC_BASE_URL", "must be https in production", "https://loja.example.com.br"
        )

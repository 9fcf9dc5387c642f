"""Settings of the operators' alert channels and the alert checks (issue 18).

Filled by `core.settings.load_settings` (same sources: environment, `.env`); every channel is
optional. See docs/configuration.md, "Alerts".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from core.errors import ConfigError

Get = Callable[[str], str | None]
_EMAIL = re.compile(r"[^@\s,<>]{1,64}@[A-Za-z0-9.-]{1,190}")
SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class NotifySettings:
    """Where operator alerts go and when the checks raise them."""

    discord_webhook_url: str = field(default="", repr=False)  # holds the webhook's token
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    email_from: str = ""
    email_to: tuple[str, ...] = ()
    admin_public_url: str = "http://127.0.0.1:3000"
    min_interval_s: int = 60  # at most one message per alert kind this often
    withdrawal_sla_hours: int = 48
    disk_min_free_mb: int = 1024
    backup_max_age_days: int = 8
    backup_dir: str = "backups"
    quiet_minutes: int = 60  # one-off alerts (late payments…) resolve after this calm

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.email_to)


def _int(get: Get, name: str, default: int, lo: int, hi: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    if len(raw) > 20 or not raw.lstrip("-").isdigit():
        raise ConfigError(name, f"{raw[:40]!r} is not a whole number", str(default))
    value = int(raw)
    if not lo <= value <= hi:
        raise ConfigError(name, f"{value} is outside {lo}..{hi}", str(default))
    return value


def _webhook(get: Get) -> str:
    raw = get("ALERT_DISCORD_WEBHOOK_URL") or ""
    example = "https://discord.com/api/webhooks/123456789012345678/abcDEF..."
    if not raw:
        return ""
    parsed = urlparse(raw)
    if (
        len(raw) > 500
        or parsed.scheme not in ("http", "https")
        or not re.search(r"/webhooks/\d+/[\w-]+$", parsed.path)
    ):
        raise ConfigError("ALERT_DISCORD_WEBHOOK_URL", "is not a Discord webhook URL", example)
    return raw


def _emails(get: Get, name: str) -> tuple[str, ...]:
    raw = get(name) or ""
    if len(raw) > 2000:
        raise ConfigError(name, "is too long", "ops@example.com,oncall@example.com")
    items = tuple(i.strip() for i in raw.split(",") if i.strip())
    for item in items:
        if not _EMAIL.fullmatch(item):
            raise ConfigError(name, f"{item[:40]!r} is not an e-mail address", "ops@example.com")
    return items


def load_notify_settings(get: Get) -> NotifySettings:
    """Read the ALERT_* and ADMIN_PUBLIC_URL variables; raise `ConfigError` on a bad one."""
    security = (get("ALERT_SMTP_SECURITY") or "starttls").lower()
    if security not in SMTP_SECURITY:
        raise ConfigError(
            "ALERT_SMTP_SECURITY", f"{security!r} is not one of {SMTP_SECURITY}", "starttls"
        )
    admin_url = get("ADMIN_PUBLIC_URL") or "http://127.0.0.1:3000"
    if urlparse(admin_url).scheme not in ("http", "https") or len(admin_url) > 300:
        raise ConfigError(
            "ADMIN_PUBLIC_URL",
            f"{admin_url[:40]!r} is not an http(s) URL",
            "https://admin.example.com.br",
        )
    host = get("ALERT_SMTP_HOST") or ""
    if len(host) > 255 or not re.fullmatch(r"[A-Za-z0-9.:-]*", host):
        raise ConfigError("ALERT_SMTP_HOST", "is not a host name", "smtp.example.com")
    email_to = _emails(get, "ALERT_EMAIL_TO")
    email_from = _emails(get, "ALERT_EMAIL_FROM")
    if host and email_to and not email_from:
        raise ConfigError(
            "ALERT_EMAIL_FROM", "is needed with ALERT_SMTP_HOST", "vitrine@example.com"
        )
    return NotifySettings(
        discord_webhook_url=_webhook(get),
        smtp_host=host,
        smtp_port=_int(get, "ALERT_SMTP_PORT", 465 if security == "tls" else 587, 1, 65535),
        smtp_security=security,
        smtp_user=get("ALERT_SMTP_USER") or "",
        smtp_password=get("ALERT_SMTP_PASSWORD") or "",
        email_from=email_from[0] if email_from else "",
        email_to=email_to,
        admin_public_url=admin_url.rstrip("/"),
        min_interval_s=_int(get, "ALERT_MIN_INTERVAL_SECONDS", 60, 0, 86_400),
        withdrawal_sla_hours=_int(get, "WITHDRAWAL_SLA_HOURS", 48, 1, 24 * 90),
        disk_min_free_mb=_int(get, "ALERT_DISK_MIN_FREE_MB", 1024, 0, 10_000_000),
        backup_max_age_days=_int(get, "ALERT_BACKUP_MAX_AGE_DAYS", 8, 1, 365),
        backup_dir=get("BACKUP_DIR") or "backups",
        quiet_minutes=_int(get, "ALERT_QUIET_MINUTES", 60, 1, 10_080),
    )

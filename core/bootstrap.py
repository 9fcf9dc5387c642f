"""Process start-up shared by every service: settings (or one line and exit 78), logging."""

from __future__ import annotations

import sys

from core.errors import ConfigError
from core.exitcodes import ExitCode
from core.logging import register_secret, setup_logging
from core.payout_settings import key_material
from core.settings import Settings, load_settings


def load_settings_or_exit() -> Settings:
    """Settings, or print the single configuration-error line and exit with 78."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(exc.one_line(), file=sys.stderr, flush=True)
        raise SystemExit(ExitCode.CONFIG) from None


def start_service(service: str, stderr: bool = True) -> Settings:
    """Settings + JSON logging for a long-lived service; registers secrets for redaction."""
    settings = load_settings_or_exit()
    register_secret(
        settings.portal_session_secret,
        settings.mercadopago_access_token,
        settings.mercadopago_webhook_secret,
        settings.discord_client_secret,
        *settings.admin_api_tokens,
        *settings.token_encryption_keys,
        *key_material(settings.payout_signing_key),
    )
    setup_logging(service, settings.log_dir, settings.log_level, stderr=stderr)
    return settings

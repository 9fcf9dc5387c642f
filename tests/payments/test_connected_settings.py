"""The connected-accounts settings: the client secret never shows, bad values stop start-up."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from tests.helpers.portal import portal_settings


def test_client_secret_is_hidden_and_the_redirect_defaults_to_the_portal(tmp_path):
    settings = portal_settings(
        tmp_path,
        "sqlite://x",
        "redis://127.0.0.1:1/0",
        MERCADOPAGO_CLIENT_ID="4934588586838432",
        MERCADOPAGO_CLIENT_SECRET="very-secret-client-value",
        PUBLIC_BASE_URL="https://loja.example.com.br",
    )
    cfg = settings.mp_connect
    assert cfg.enabled and cfg.auth_base == "https://auth.mercadopago.com.br"
    assert cfg.redirect_uri == "https://loja.example.com.br/money/mercadopago/callback"
    assert "very-secret-client-value" not in repr(settings)


def test_without_a_client_the_feature_is_off(tmp_path):
    assert not portal_settings(tmp_path, "sqlite://x", "redis://127.0.0.1:1/0").mp_connect.enabled


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MERCADOPAGO_OAUTH_BASE", "ftp://auth.example.com"),
        ("MERCADOPAGO_REDIRECT_URI", "javascript:alert(1)"),
        ("MERCADOPAGO_REFRESH_BEFORE_DAYS", "200"),
        ("MERCADOPAGO_CLIENT_ID", "abc def"),
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        portal_settings(tmp_path, "sqlite://x", "redis://127.0.0.1:1/0", **{name: value})

"""New installs create their PIX charges through the Orders API; an existing install keeps the
Payments API while MERCADOPAGO_API is unset, and an explicit value always wins."""

import pytest
from cryptography.fernet import Fernet

from core.secrets_store import SECRETS_FILE
from core.settings import load_settings


def env_for(data_dir, **extra: str) -> dict[str, str]:
    return {"DATA_DIR": str(data_dir), "LOG_DIR": str(data_dir.parent / "logs"), **extra}


def test_a_new_install_gets_the_orders_api_and_keeps_it(tmp_path):
    data = tmp_path / "data"
    assert load_settings(env_for(data), env_file=None).mercadopago_api == "orders"
    assert "MERCADOPAGO_API=orders" in (data / SECRETS_FILE).read_text().splitlines()
    # every later start (and every other process) reads the recorded choice
    assert load_settings(env_for(data), env_file=None).mercadopago_api == "orders"


def test_an_existing_install_keeps_the_payments_api_when_unset(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / SECRETS_FILE).write_text("STOCK_HASH_KEY=" + "k" * 40 + "\n")  # from before
    assert load_settings(env_for(data), env_file=None).mercadopago_api == "payments"
    assert "MERCADOPAGO_API" not in (data / SECRETS_FILE).read_text()


def test_an_existing_database_without_secrets_file_is_not_a_new_install(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "vitrine.sqlite3").write_bytes(b"")  # payments taken before this version
    assert load_settings(env_for(data), env_file=None).mercadopago_api == "payments"
    assert "MERCADOPAGO_API" not in (data / SECRETS_FILE).read_text()


@pytest.mark.parametrize("value", ["payments", "orders"])
def test_an_explicit_setting_wins_over_the_recorded_default(tmp_path, value):
    data = tmp_path / "data"
    load_settings(env_for(data), env_file=None)  # records orders
    env = env_for(data, MERCADOPAGO_API=value)
    assert load_settings(env, env_file=None).mercadopago_api == value


def test_production_without_the_setting_stays_on_payments(tmp_path):
    """Production has no generated file: unset keeps an upgraded install where it was; the
    deployment templates set `orders` for new ones."""
    env = env_for(
        tmp_path / "data",
        VITRINE_ENV="production",
        PORTAL_SESSION_SECRET="s" * 32,
        ADMIN_API_TOKEN="t" * 32,
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MERCADOPAGO_WEBHOOK_SECRET="w" * 32,
        STOCK_HASH_KEY="h" * 32,
        MERCADOPAGO_ACCESS_TOKEN="APP_USR-1",
        DISCORD_CLIENT_ID="1",
        DISCORD_CLIENT_SECRET="x",
        PUBLIC_BASE_URL="https://loja.example.com.br",
    )
    assert load_settings(env, env_file=None).mercadopago_api == "payments"
    assert not (tmp_path / "data" / SECRETS_FILE).exists()

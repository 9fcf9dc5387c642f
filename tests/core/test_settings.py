import os
import stat
import subprocess
import sys
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from core.errors import ConfigError
from core.settings import EMBEDDED_REDIS_URL, load_settings


def env(tmp_path, **extra):
    base = {"DATA_DIR": str(tmp_path / "data"), "LOG_DIR": str(tmp_path / "logs")}
    base.update(extra)
    return base


def test_development_defaults_generate_secrets_once_with_mode_0600(tmp_path):
    first = load_settings(env(tmp_path), env_file=None)
    second = load_settings(env(tmp_path), env_file=None)
    secrets_file = tmp_path / "data" / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert first.portal_session_secret == second.portal_session_secret
    assert first.admin_api_tokens == second.admin_api_tokens
    assert first.token_encryption_keys == second.token_encryption_keys
    assert len(first.portal_session_secret) >= 32
    assert first.portal_port == 3100 and first.admin_port == 3000
    assert first.admin_bind == "127.0.0.1"
    assert first.redis_url == EMBEDDED_REDIS_URL and first.embedded_redis
    assert first.database_url == f"sqlite://{tmp_path / 'data' / 'vitrine.sqlite3'}"


def test_operator_values_win_over_generated_ones(tmp_path):
    key = Fernet.generate_key().decode()
    s = load_settings(
        env(tmp_path, TOKEN_ENCRYPTION_KEYS=key, ADMIN_API_TOKEN="a" * 20), env_file=None
    )
    assert s.token_encryption_keys == (key,)
    assert s.admin_api_tokens == ("a" * 20,)
    text = (tmp_path / "data" / "secrets.env").read_text()
    assert key not in text and "ADMIN_API_TOKEN" not in text


def test_secrets_are_hidden_from_repr(tmp_path):
    s = load_settings(
        env(tmp_path, MERCADOPAGO_ACCESS_TOKEN="APP_USR-supersecret-123"), env_file=None
    )
    shown = repr(s)
    assert "APP_USR-supersecret-123" not in shown
    assert s.portal_session_secret not in shown
    assert s.token_encryption_keys[0] not in shown


@pytest.mark.parametrize(
    "var,value,fragment",
    [
        ("TOKEN_ENCRYPTION_KEYS", "garbage", "TOKEN_ENCRYPTION_KEYS"),
        ("PORTAL_PORT", "abc", "PORTAL_PORT"),
        ("ADMIN_PORT", "70000", "ADMIN_PORT"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL"),
        ("REDIS_URL", "http://nope", "REDIS_URL"),
        ("PLATFORM_FEE_PERCENT", "101", "PLATFORM_FEE_PERCENT"),
        ("PLATFORM_FEE_PERCENT", "dez", "PLATFORM_FEE_PERCENT"),
        ("PLATFORM_FEE_PERCENT", "5.123", "PLATFORM_FEE_PERCENT"),
        ("ADMIN_API_TOKEN", "short", "ADMIN_API_TOKEN"),
        ("ADMIN_BIND", "not an ip", "ADMIN_BIND"),
        ("VITRINE_ENV", "staging", "VITRINE_ENV"),
        ("MERCADOPAGO_API_BASE", "ftp://x", "MERCADOPAGO_API_BASE"),
    ],
)
def test_malformed_value_names_the_variable_and_shows_an_example(tmp_path, var, value, fragment):
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, **{var: value}), env_file=None)
    line = info.value.one_line()
    assert fragment in line and "example:" in line and "\n" not in line


def test_fee_accepts_comma_decimal(tmp_path):
    s = load_settings(env(tmp_path, PLATFORM_FEE_PERCENT="5,25"), env_file=None)
    assert s.platform_fee_bps == 525 and s.platform_fee_percent == Decimal("5.25")


def test_production_requires_outside_credentials_and_generates_nothing(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(env(tmp_path, VITRINE_ENV="production"), env_file=None)
    assert info.value.var == "PORTAL_SESSION_SECRET"
    assert not (tmp_path / "data" / "secrets.env").exists()
    full = env(
        tmp_path,
        VITRINE_ENV="production",
        PORTAL_SESSION_SECRET="s" * 40,
        ADMIN_API_TOKEN="t" * 40,
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        MERCADOPAGO_WEBHOOK_SECRET="w" * 40,
        STOCK_HASH_KEY="h" * 40,
        PUBLIC_BASE_URL="https://loja.example",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(full, env_file=None)
    assert info.value.var == "MERCADOPAGO_ACCESS_TOKEN"
    full.update(
        MERCADOPAGO_ACCESS_TOKEN="APP_USR-1", DISCORD_CLIENT_ID="1", DISCORD_CLIENT_SECRET="x"
    )
    assert load_settings(full, env_file=None).environment == "production"


def test_dotenv_file_is_read_and_environment_overrides_it(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORTAL_PORT=4100\nADMIN_PORT=4000\n")
    s = load_settings(env(tmp_path, ADMIN_PORT="4001"), env_file=dotenv)
    assert s.portal_port == 4100 and s.admin_port == 4001


def test_service_with_garbage_key_exits_at_once_with_one_line(tmp_path):
    environ = {**os.environ, **env(tmp_path, TOKEN_ENCRYPTION_KEYS="garbage")}
    for module in ("web.portal", "web.admin", "orchestrator"):
        proc = subprocess.run(
            [sys.executable, "-m", module],
            env=environ,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 78, (module, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "TOKEN_ENCRYPTION_KEYS" in lines[0], (module, proc.stderr)


def test_concurrent_first_starts_agree_on_generated_secrets(tmp_path):
    code = (
        "from core.settings import load_settings; import sys; "
        "print(load_settings(env_file=None).portal_session_secret)"
    )
    environ = {**os.environ, **env(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=environ, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert len(outputs) == 1


@pytest.mark.parametrize(
    "var,value",
    [
        ("VITRINE_LEASE_TTL_S", "soon"),
        ("VITRINE_ORCH_HEARTBEAT_S", "5s"),
        ("VITRINE_POLICY_BASE_DELAY", "ten"),
    ],
)
def test_orchestrator_with_a_bad_tuning_knob_exits_with_one_line(tmp_path, var, value):
    environ = {**os.environ, **env(tmp_path), var: value, "REDIS_URL": "redis://127.0.0.1:9/0"}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 78, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: ") and var in lines[0]

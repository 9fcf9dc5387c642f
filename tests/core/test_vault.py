import logging

from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from core.logging import JsonFormatter, redact, register_secret
from core.vault import SecretToken, TokenVault, VaultError, validate_keys

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
BOT_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GabcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_token_written_under_old_key_is_readable_and_reencrypted_under_new():
    old_vault = TokenVault([OLD])
    stored = old_vault.encrypt(BOT_TOKEN)
    rotated_vault = TokenVault([NEW, OLD])
    assert rotated_vault.decrypt(stored).reveal() == BOT_TOKEN
    assert rotated_vault.needs_rotation(stored)
    rewritten = rotated_vault.rotate(stored)
    assert not rotated_vault.needs_rotation(rewritten)
    # Once every token is rewritten the old key can be dropped.
    assert TokenVault([NEW]).decrypt(rewritten).reveal() == BOT_TOKEN


def test_token_under_a_removed_key_is_a_clear_error():
    stored = TokenVault([OLD]).encrypt(BOT_TOKEN)
    try:
        TokenVault([NEW]).decrypt(stored)
    except VaultError as exc:
        assert "no longer configured" in str(exc)
    else:
        raise AssertionError("decrypt must fail")


def test_secret_token_never_shows_itself():
    secret = SecretToken(BOT_TOKEN)
    assert BOT_TOKEN not in repr(secret)
    assert BOT_TOKEN not in str(secret)
    assert BOT_TOKEN not in f"{secret}"
    assert BOT_TOKEN not in repr({"token": secret})


def test_logs_never_contain_a_bot_token():
    register_secret("my-registered-secret-value")
    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "login with %s and Bot %s and my-registered-secret-value",
        (BOT_TOKEN, "abcdefghijklmnop"),
        None,
    )
    line = JsonFormatter("test").format(record)
    assert BOT_TOKEN not in line and "abcdefghijklmnop" not in line
    assert "my-registered-secret-value" not in line
    assert "[redacted]" in line
    assert redact("nothing secret here") == "nothing secret here"


def test_validate_keys_explains_the_problem():
    assert validate_keys([]) == "no key given"
    assert "key #2" in validate_keys([NEW, "garbage"])
    assert validate_keys([NEW, OLD]) is None


@given(st.text(min_size=1, max_size=200))
def test_any_token_round_trips(token):
    vault = TokenVault([NEW, OLD])
    assert vault.decrypt(vault.encrypt(token)).reveal() == token

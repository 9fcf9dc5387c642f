"""Money-out requests signed with the integrator's Ed25519 key (Mercado Pago's end-to-end
encryption): an account that enforces signatures pays a signed transfer, refuses an unsigned
or wrongly signed one (the money goes back, nothing leaves the account), and automatic payouts
refuse to start against the real Mercado Pago without a key."""

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from core.errors import ConfigError
from core.exitcodes import ExitCode
from core.logging import redact, register_secret
from core.payout_settings import key_material
from core.settings import load_settings
from shop import ledger, payouts
from shop.payments.mercadopago_payouts import MercadoPagoPayouts
from shop.states import WithdrawalStatus
from shop.withdrawals import request_withdrawal
from tests.payouts.conftest import CPF, funded_tenant

START = 1_000_000_00  # the stand-in's platform balance


def ed25519_pem() -> tuple[bytes, str]:
    """(private key PEM, public key PEM) of a fresh Ed25519 pair."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


async def enforcing_account(mp, public_pem: str) -> None:
    """The platform's account as in production: our public key registered, signatures on."""
    r = await mp.api.post(
        "/_sandbox/mp/payouts/script",
        json={"signing_public_key": public_pem, "enforce_signature": True},
    )
    assert r.status_code == 200, r.text


def gateway_with(mp, signing_key: bytes | None, attempts: int = 4) -> MercadoPagoPayouts:
    return MercadoPagoPayouts(
        mp.url,
        "TEST-token",
        "",
        signing_key=signing_key,
        max_attempts=attempts,
        backoff_base=0.01,
        max_backoff=0.05,
    )


async def approved(amount: int = 2_500):
    tid = await funded_tenant(10_000)
    w = await request_withdrawal(tid, amount, CPF, "account:1")
    return await payouts.approve(w.id, "admin:ops", automatic=True)


async def pay_one(mp, signing_key: bytes | None):
    """One approved withdrawal of R$ 25,00 and one sender pass: (withdrawal, report)."""
    gateway = gateway_with(mp, signing_key)
    try:
        w = await approved(2_500)
        report = await payouts.run_once(gateway)
    finally:
        await gateway.aclose()
    await w.refresh_from_db()
    return w, report


async def test_signed_payout_is_paid_by_an_account_that_enforces_signatures(db, mp, bank):
    private, public = ed25519_pem()
    await enforcing_account(mp, public)
    w, report = await pay_one(mp, private)
    assert report.paid == 1 and w.status == WithdrawalStatus.COMPLETED
    assert len(bank.transfers) == 1 and bank.balance_cents == START - 2_500
    assert bank.refused_signatures == 0


@pytest.mark.parametrize("signer", ["unsigned", "another key"])
async def test_badly_signed_payout_is_refused_and_the_money_returns(db, mp, bank, signer):
    _, public = ed25519_pem()
    await enforcing_account(mp, public)
    other_key = ed25519_pem()[0] if signer == "another key" else None
    w, report = await pay_one(mp, other_key)
    assert report.failed == 1 and w.status == WithdrawalStatus.FAILED
    assert (w.reason or "").startswith("Mercado Pago 401")
    assert not bank.transfers and bank.balance_cents == START  # nothing left the account
    assert bank.refused_signatures == 1  # refused once: a 401 is not sent again
    assert (await ledger.balance(w.tenant_id)).total_cents == 10_000


async def test_a_signed_payout_whose_answer_was_lost_is_resent_with_the_same_signature(
    db, mp, bank
):
    private, public = ed25519_pem()
    await enforcing_account(mp, public)
    bank.lost_answers = 2
    gateway = gateway_with(mp, private, attempts=2)
    try:
        w = await approved(2_500)
        await payouts.run_once(gateway)
        await payouts.run_once(gateway, datetime.now(UTC) + timedelta(minutes=5))
    finally:
        await gateway.aclose()
    await w.refresh_from_db()
    assert w.status == WithdrawalStatus.COMPLETED
    assert len(bank.transfers) == 1 and bank.creations == 3 and bank.refused_signatures == 0


def base_env(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "logs"),
        "PAYOUT_MODE": "automatic",
        **extra,
    }


def test_settings_read_the_signing_key_from_a_file_and_never_show_it(tmp_path):
    private, _ = ed25519_pem()
    key_file = tmp_path / "mp-payouts.pem"
    key_file.write_bytes(private)
    env = base_env(
        tmp_path,
        MERCADOPAGO_API_BASE="https://api.mercadopago.com",
        MERCADOPAGO_PAYOUT_SIGNING_KEY_FILE=str(key_file),
    )
    settings = load_settings(env, env_file=None)
    assert settings.payout_signing_key == private
    assert b"PRIVATE KEY" not in repr(settings).encode()
    one_line = private.decode().replace("\n", "\\n")  # as a one-line env value
    env = base_env(tmp_path, MERCADOPAGO_PAYOUT_SIGNING_KEY=one_line)
    assert load_settings(env, env_file=None).payout_signing_key == private


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({}, "is required with PAYOUT_MODE=automatic"),
        ({"MERCADOPAGO_PAYOUT_SIGNING_KEY_FILE": "/nonexistent/key.pem"}, "cannot be read"),
        ({"MERCADOPAGO_PAYOUT_SIGNING_KEY": "not a key"}, "is not an unencrypted PEM"),
        ({"MERCADOPAGO_PAYOUT_SIGNING_KEY": "rsa"}, "is not an Ed25519 key"),
    ],
)
def test_automatic_payouts_against_mercado_pago_need_a_good_signing_key(tmp_path, extra, problem):
    if extra.get("MERCADOPAGO_PAYOUT_SIGNING_KEY") == "rsa":
        rsa = generate_private_key(public_exponent=65537, key_size=2048)
        pem = rsa.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        extra = {"MERCADOPAGO_PAYOUT_SIGNING_KEY": pem}
    env = base_env(tmp_path, MERCADOPAGO_API_BASE="https://api.mercadopago.com", **extra)
    with pytest.raises(ConfigError, match=problem):
        load_settings(env, env_file=None)


def test_manual_payouts_and_the_sandbox_need_no_key(tmp_path):
    env = base_env(tmp_path, MERCADOPAGO_API_BASE="https://api.mercadopago.com")
    assert load_settings({**env, "PAYOUT_MODE": "manual"}, env_file=None).payout_signing_key is None
    sandbox = base_env(tmp_path, MERCADOPAGO_API_BASE="http://127.0.0.1:9")
    assert load_settings(sandbox, env_file=None).payouts_automatic


async def test_the_reconciler_refuses_to_start_unsigned_against_mercado_pago(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **base_env(tmp_path, MERCADOPAGO_API_BASE="https://api.mercadopago.com"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler", "--once", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == ExitCode.CONFIG
    assert len(lines) == 1 and "MERCADOPAGO_PAYOUT_SIGNING_KEY_FILE" in lines[0]


def test_the_signing_key_material_is_redacted_from_logs():
    private, _ = ed25519_pem()
    (material,) = key_material(private)  # one base64 line for an Ed25519 key
    register_secret(*key_material(private))
    assert material not in redact(f"loaded key {material}") and "[redacted]" in redact(material)

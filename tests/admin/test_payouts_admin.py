"""Admin API for automatic payouts: approve sends the PIX when PAYOUT_MODE=automatic, the
payout's state is shown, a failed one is retried or left to be paid by hand."""

import dataclasses
from types import SimpleNamespace

import pytest

from core.settings import load_settings
from sandbox.mercadopago.payouts import PAYOUTS
from sandbox.mercadopago.testing import mp_harness
from shop import ledger, payouts
from shop.payments.mercadopago_payouts import MercadoPagoPayouts
from shop.withdrawals import request_withdrawal
from tests.payouts.conftest import CPF, funded_tenant
from tests.shop.helpers import ADMIN_TOKEN, MP_FAST, make_settings
from web.admin import create_app

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=["automatic", "manual"])
async def admin(request, db, redis_url, tmp_path):
    async with mp_harness(MP_FAST) as mp:
        await mp.control.set_faults(drop=True)  # nobody listens for webhooks here
        settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url)
        settings = dataclasses.replace(settings, payouts_automatic=request.param == "automatic")
        app = create_app(settings)
        gateway = MercadoPagoPayouts.from_settings(settings, backoff_base=0.01)
        async with app.test_app():
            try:
                yield SimpleNamespace(
                    client=app.test_client(),
                    bank=mp.app[PAYOUTS],
                    gateway=gateway,
                    mode=request.param,
                )
            finally:
                await gateway.aclose()


async def _approve(admin, amount: int = 2_500) -> int:
    tid = await funded_tenant(10_000)
    w = await request_withdrawal(tid, amount, CPF, "account:1")
    answer = await admin.client.post(f"/api/withdrawals/{w.id}/approve", headers=AUTH)
    assert answer.status_code == 200 and (await answer.get_json())["status"] == "processing"
    return w.id


async def _payout(admin, wid: int) -> dict:
    answer = await admin.client.get(f"/api/withdrawals/{wid}/payout", headers=AUTH)
    assert answer.status_code == 200
    return await answer.get_json()


async def test_approve_pays_automatically_only_when_the_setting_is_on(admin):
    wid = await _approve(admin)
    await payouts.run_once(admin.gateway)
    shown = await _payout(admin, wid)
    if admin.mode == "manual":  # the operator's flow, unchanged: nothing reaches Mercado Pago
        assert shown["mode"] == "manual" and shown["withdrawal_status"] == "processing"
        assert not admin.bank.transfers
        return
    (transfer,) = admin.bank.transfers.values()
    assert shown["mode"] == "automatic" and shown["status"] == "paid"
    assert shown["withdrawal_status"] == "completed"
    assert shown["provider_id"] == transfer.id and shown["e2e_id"] == transfer.origin_id
    listed = await (
        await admin.client.get("/api/withdrawals?status=completed", headers=AUTH)
    ).get_json()
    assert [w["transfer_id"] for w in listed["withdrawals"]] == [transfer.origin_id]
    refused = await admin.client.post(
        f"/api/withdrawals/{wid}/reject", headers=AUTH, json={"reason": "x"}
    )
    assert refused.status_code == 409


async def test_failed_payout_is_listed_then_retried_or_paid_by_hand(admin):
    admin.bank.rejected_keys = {CPF}
    wid = await _approve(admin)
    if admin.mode == "manual":
        answer = await admin.client.post(f"/api/withdrawals/{wid}/retry", headers=AUTH)
        assert answer.status_code == 409  # no payout to retry, and none sent
        assert not admin.bank.transfers
        return
    await payouts.run_once(admin.gateway)
    failed = await (
        await admin.client.get("/api/withdrawals?status=failed", headers=AUTH)
    ).get_json()
    (row,) = failed["withdrawals"]
    assert row["id"] == wid and row["failed_at"] and "by_bank" in row["reason"]
    tenant = row["tenant_id"]
    assert (await ledger.balance(tenant)).total_cents == 10_000
    admin.bank.rejected_keys = set()
    retried = await admin.client.post(f"/api/withdrawals/{wid}/retry", headers=AUTH)
    body = await retried.get_json()
    assert retried.status_code == 200 and body["retry_of"] == wid and body["status"] == "processing"
    again = await admin.client.post(f"/api/withdrawals/{wid}/manual", headers=AUTH)
    assert again.status_code == 409  # retried once only
    await payouts.run_once(admin.gateway)
    assert (await _payout(admin, body["id"]))["status"] == "paid"
    assert (await _payout(admin, wid))["retried_as"] == body["id"]
    assert (await ledger.balance(tenant)).total_cents == 7_500
    assert len(admin.bank.transfers) == 2  # the refused one and the paid one


async def test_payout_of_an_unknown_withdrawal_is_404(admin):
    answer = await admin.client.get("/api/withdrawals/999999/payout", headers=AUTH)
    assert answer.status_code == 404


def test_payout_mode_setting_is_checked(tmp_path):
    # The sandbox's loopback URL: against api.mercadopago.com automatic needs a signing key
    # (tests/payouts/test_payout_signing.py).
    base = {"DATA_DIR": str(tmp_path), "LOG_DIR": str(tmp_path)}
    base["MERCADOPAGO_API_BASE"] = "http://127.0.0.1:9"
    assert load_settings({**base, "PAYOUT_MODE": "automatic"}, env_file=None).payouts_automatic
    assert not load_settings(base, env_file=None).payouts_automatic
    with pytest.raises(Exception, match="PAYOUT_MODE"):
        load_settings({**base, "PAYOUT_MODE": "sometimes"}, env_file=None)

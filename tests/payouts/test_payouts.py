"""Automatic PIX payouts against the Mercado Pago stand-in: paid once with the end-to-end id,
refused and returned to the balance, a lost answer looked up without a second transfer."""

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest

from core.models import AuditLog
from shop import ledger, payouts
from shop.errors import InvalidStateChange, PayoutInFlight
from shop.models import Payout, SellerNotice, Withdrawal
from shop.notify.seller import notice_text
from shop.states import PayoutStatus, WithdrawalStatus
from shop.withdrawals import complete_withdrawal, reject_withdrawal, request_withdrawal
from tests.payouts.conftest import CPF, funded_tenant, payouts_gateway

E2E = re.compile(r"E10573521[0-9]{12}[A-Za-z0-9]{11}")
START = 1_000_000_00  # the stand-in's platform balance


async def approved(amount: int = 2_500, *, automatic: bool = True) -> Withdrawal:
    tid = await funded_tenant(10_000)
    w = await request_withdrawal(tid, amount, CPF, "account:1")
    return await payouts.approve(w.id, "admin:ops", automatic=automatic)


async def seller_total(w: Withdrawal) -> int:
    return (await ledger.balance(w.tenant_id)).total_cents


async def notice_statuses(w: Withdrawal) -> list[str]:
    notices = await SellerNotice.filter(tenant_id=w.tenant_id).order_by("id")
    return [n.params["status"] for n in notices if n.params.get("withdrawal_id") == w.id]


async def test_approved_withdrawal_is_paid_automatically_once_with_the_e2e_id(db, bank, gateway):
    w = await approved(2_500)
    report = await payouts.run_once(gateway)
    await w.refresh_from_db()
    (transfer,) = bank.transfers.values()
    assert report.paid == 1
    assert w.status == WithdrawalStatus.COMPLETED and E2E.fullmatch(w.transfer_id or "")
    assert w.transfer_id == transfer.origin_id  # the proof is the transfer's own E2E id
    assert transfer.amount_cents == 2_500 and transfer.chave == {"type": "CPF", "value": CPF}
    assert bank.balance_cents == START - 2_500
    assert await seller_total(w) == 7_500
    assert await notice_statuses(w) == ["processing", "completed"]
    again = await payouts.run_once(gateway, datetime.now(UTC) + timedelta(hours=1))
    assert again.paid == 0 and bank.creations == 1 and bank.balance_cents == START - 2_500


async def test_refused_payout_fails_with_the_reason_and_returns_the_money(db, bank, gateway):
    bank.rejected_keys = {CPF}  # the destination bank refuses this key
    w = await approved(2_500)
    assert await seller_total(w) == 7_500
    report = await payouts.run_once(gateway)
    await w.refresh_from_db()
    assert report.failed == 1 and w.status == WithdrawalStatus.FAILED
    assert w.reason == "Mercado Pago: rejected/by_bank" and w.failed_at is not None
    assert await seller_total(w) == 10_000  # exactly the amount, back on the balance
    assert (await ledger.balance(w.tenant_id)).withdrawable_cents == 10_000
    assert bank.balance_cents == START
    assert await notice_statuses(w) == ["processing", "failed"]
    notice = await SellerNotice.filter(tenant_id=w.tenant_id).order_by("-id").first()
    assert notice is not None
    text = notice_text(notice, "pt-BR", "Loja")
    assert "R$ 25,00" in text and "voltou ao seu saldo" in text and "by_bank" in text
    payout = await Payout.get(withdrawal_id=w.id)
    assert payout.status == PayoutStatus.FAILED and payout.due_at is None


async def test_an_outright_refusal_fails_the_withdrawal_too(db, bank, gateway):
    bank.balance_cents = 1_000  # the platform's account cannot cover it: 400
    w = await approved(2_500)
    await payouts.run_once(gateway)
    await w.refresh_from_db()
    assert w.status == WithdrawalStatus.FAILED and "Insufficient balance" in (w.reason or "")
    assert await seller_total(w) == 10_000 and not bank.transfers


async def test_lost_answer_is_looked_up_and_never_paid_twice(db, mp, bank):
    gateway = payouts_gateway(mp, attempts=2)
    try:
        bank.lost_answers = 2  # processed at Mercado Pago, both answers lost on the way
        w = await approved(2_500)
        first = await payouts.run_once(gateway)
        await w.refresh_from_db()
        payout = await Payout.get(withdrawal_id=w.id)
        assert first.pending == 1 and w.status == WithdrawalStatus.PROCESSING
        assert payout.status == PayoutStatus.SENT and payout.provider_id is None
        assert len(bank.transfers) == 1 and bank.balance_cents == START - 2_500
        with pytest.raises(PayoutInFlight):  # nobody may pay it by hand meanwhile
            await complete_withdrawal(w.id, "admin:ops", "E10573521202611301200abcdefghijk")
        later = datetime.now(UTC) + timedelta(minutes=5)
        second = await payouts.run_once(gateway, later)
        await w.refresh_from_db()
        (transfer,) = bank.transfers.values()
        assert second.paid == 1 and w.status == WithdrawalStatus.COMPLETED
        assert w.transfer_id == transfer.origin_id
        assert bank.creations == 3 and bank.balance_cents == START - 2_500  # one transfer
        assert await seller_total(w) == 7_500
        payout = await Payout.get(withdrawal_id=w.id)
        assert payout.provider_id == transfer.id and payout.attempts == 2
    finally:
        await gateway.aclose()


async def test_two_reconcilers_racing_make_one_transfer(db, mp, bank):
    gateways = [payouts_gateway(mp), payouts_gateway(mp)]
    try:
        await mp.control.set_faults(slow_ms=50)  # both are in flight at once
        w = await approved(2_500)
        reports = await asyncio.gather(*(payouts.run_once(g) for g in gateways))
        await w.refresh_from_db()
        assert sorted(r.paid for r in reports) == [0, 1]
        assert w.status == WithdrawalStatus.COMPLETED
        assert len(bank.transfers) == 1 and bank.creations == 1
        assert bank.balance_cents == START - 2_500
    finally:
        for g in gateways:
            await g.aclose()


async def test_5xx_and_429_are_sent_again_with_the_same_key(db, mp, bank, gateway):
    await mp.control.set_faults(api_error_status=500, api_error_count=1)
    w = await approved(1_000)
    await payouts.run_once(gateway)
    await mp.control.set_faults(api_error_status=429, api_error_count=1, retry_after=0)
    w2 = await approved(1_500)
    await payouts.run_once(gateway)
    for each in (w, w2):
        await each.refresh_from_db()
        assert each.status == WithdrawalStatus.COMPLETED
    assert len(bank.transfers) == 2 and bank.balance_cents == START - 2_500


async def test_pending_transfer_is_polled_until_it_settles(db, mp, bank, gateway):
    bank.outcomes = ["pending"]
    w = await approved(2_500)
    await payouts.run_once(gateway)
    payout = await Payout.get(withdrawal_id=w.id)
    assert payout.status == PayoutStatus.SENT and payout.provider_id
    await payouts.run_once(gateway)  # not due yet: nothing asked
    resp = await mp.api.post(
        f"/_sandbox/mp/payouts/{payout.provider_id}/settle", json={"status": "processed"}
    )
    assert resp.status_code == 200
    await payouts.run_once(gateway, datetime.now(UTC) + timedelta(minutes=1))
    await w.refresh_from_db()
    assert (
        w.status == WithdrawalStatus.COMPLETED
        and w.transfer_id == resp.json()["transaction"]["to"]["accounts"][0]["origin_id"]
    )
    assert bank.creations == 1 and bank.balance_cents == START - 2_500


async def test_manual_mode_keeps_the_operators_flow(db, bank, gateway):
    w = await approved(2_500, automatic=False)
    assert not await Payout.exists(withdrawal_id=w.id)
    assert (await payouts.run_once(gateway)).paid == 0 and not bank.transfers
    done = await complete_withdrawal(w.id, "admin:ops", "E10573521202611301200abcdefghijk")
    assert done.status == WithdrawalStatus.COMPLETED and await seller_total(w) == 7_500


async def test_a_queued_payout_cannot_be_rejected_by_hand(db, gateway):
    w = await approved(2_500)
    with pytest.raises(PayoutInFlight):
        await reject_withdrawal(w.id, "admin:ops", "changed my mind")
    assert (await Withdrawal.get(id=w.id)).status == WithdrawalStatus.PROCESSING


async def test_failed_payout_retried_once_as_a_new_withdrawal(db, bank, gateway):
    bank.rejected_keys = {CPF}
    w = await approved(2_500)
    await payouts.run_once(gateway)
    bank.rejected_keys = set()
    new = await payouts.retry_payout(w.id, "admin:ops", manual=False)
    assert new.id != w.id and new.status == WithdrawalStatus.PROCESSING
    assert await seller_total(w) == 7_500  # debited again
    with pytest.raises(InvalidStateChange):
        await payouts.retry_payout(w.id, "admin:ops", manual=False)
    await payouts.run_once(gateway)
    await new.refresh_from_db()
    assert new.status == WithdrawalStatus.COMPLETED and len(bank.transfers) == 2
    assert bank.balance_cents == START - 2_500  # the refused one moved nothing
    assert (await Payout.get(withdrawal_id=w.id)).superseded_by == new.id
    assert await AuditLog.exists(action="withdrawal.payout_retried", target_id=str(w.id))


async def test_failed_payout_left_to_be_paid_by_hand(db, bank, gateway):
    bank.rejected_keys = {CPF}
    w = await approved(2_500)
    await payouts.run_once(gateway)
    new = await payouts.retry_payout(w.id, "admin:ops", manual=True)
    assert new.status == WithdrawalStatus.PROCESSING
    assert not await Payout.exists(withdrawal_id=new.id)
    await payouts.run_once(gateway)
    assert (await Withdrawal.get(id=new.id)).status == WithdrawalStatus.PROCESSING
    assert len(bank.transfers) == 1  # only the refused one


async def test_an_answer_unknown_for_12_hours_is_left_to_an_operator(db, mp, bank):
    gateway = payouts_gateway(mp, attempts=1)
    try:
        bank.lost_answers = 100
        w = await approved(2_500)
        await payouts.run_once(gateway)
        await payouts.run_once(gateway, datetime.now(UTC) + timedelta(hours=13))
        payout = await Payout.get(withdrawal_id=w.id)
        assert payout.status == PayoutStatus.STUCK and "check its panel" in payout.last_error
        assert bank.creations == 1  # not sent again once stuck
        (transfer,) = bank.transfers.values()  # the operator finds it paid in the panel
        done = await complete_withdrawal(w.id, "admin:ops", transfer.origin_id)
        assert done.status == WithdrawalStatus.COMPLETED and await seller_total(w) == 7_500
    finally:
        await gateway.aclose()


async def test_the_reconciler_process_sends_a_queued_payout(db, tmp_path, redis_url, bank, mp):
    """`python -m reconciler --once`, a real process, pays what the approval queued."""
    w = await approved(2_500)
    env = {  # only what it needs: nothing the shell exports leaks in
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "logs"),
        "DATABASE_URL": db,
        "REDIS_URL": redis_url,
        "MERCADOPAGO_API_BASE": mp.url,
        "MERCADOPAGO_ACCESS_TOKEN": "TEST-token",
        "PAYOUT_MODE": "automatic",
        "VITRINE_MP_POLL_BUDGET_PER_MIN": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler", "--once", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "PayoutReport(paid=1" in out.decode()
    await w.refresh_from_db()
    (transfer,) = bank.transfers.values()
    assert w.status == WithdrawalStatus.COMPLETED and w.transfer_id == transfer.origin_id

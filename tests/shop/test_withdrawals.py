"""Withdrawals: balance checks, PIX keys, statuses with audit, no overdraw under concurrency."""

import asyncio
import uuid

import pytest

from core.errors import IllegalTransition
from core.models import AuditLog
from shop import ledger
from shop.errors import InsufficientBalance, InvalidAmount, InvalidPixKey
from shop.models import Withdrawal
from shop.pix_keys import PixKeyType, validate_pix_key
from shop.states import WithdrawalStatus
from shop.withdrawals import (
    approve_withdrawal,
    complete_withdrawal,
    reject_withdrawal,
    request_withdrawal,
)
from tests.shop.helpers import make_order, make_store

CPF = "529.982.247-25"


async def funded_store(amount=10_000, hold_days=0):
    store = await make_store(stock=0)
    order = await make_order(store, reserve=False)
    await ledger.book_sale(str(uuid.uuid4()), store["tenant"].id, order.id, amount, 0, hold_days)
    return store["tenant"].id


@pytest.mark.parametrize(
    "raw, kind, normalised",
    [
        (CPF, PixKeyType.CPF, "52998224725"),
        ("11.222.333/0001-81", PixKeyType.CNPJ, "11222333000181"),
        ("Vendedor@Example.com", PixKeyType.EMAIL, "vendedor@example.com"),
        ("+55 (11) 98765-4321", PixKeyType.PHONE, "+5511987654321"),
        ("+551133334444", PixKeyType.PHONE, "+551133334444"),
        (
            "7D9F0335-8DCC-4054-9BF9-0DBD61D36906",
            PixKeyType.RANDOM,
            "7d9f0335-8dcc-4054-9bf9-0dbd61d36906",
        ),
    ],
)
def test_valid_pix_keys_are_recognised_and_normalised(raw, kind, normalised):
    assert validate_pix_key(raw) == (kind, normalised)


@pytest.mark.parametrize(
    "raw, kind",
    [
        ("529.982.247-24", None),
        ("111.111.111-11", None),
        ("11.222.333/0001-80", None),
        ("11987654321", "phone"),
        ("+1 555 0100", None),
        ("a@b", None),
        ("", None),
        ("7d9f03358dcc40549bf90dbd61d36906", None),
        (CPF, "email"),
        (CPF, "bitcoin"),
    ],
)
def test_invalid_pix_keys_are_refused(raw, kind):
    with pytest.raises(InvalidPixKey):
        validate_pix_key(raw, kind)


async def test_withdrawal_larger_than_available_is_refused_with_a_clear_message(db):
    tid = await funded_store(10_000)
    with pytest.raises(InsufficientBalance) as info:
        await request_withdrawal(tid, 10_001, CPF, "account:1")
    assert info.value.message() == (
        "Saldo insuficiente: você pediu R$ 100,01, mas só "
        "R$ 100,00 está disponível para saque agora."
    )
    assert "only R$ 100,00 is available" in info.value.message("en")
    assert await Withdrawal.all().count() == 0
    assert (await ledger.balance(tid)).total_cents == 10_000


async def test_funds_on_hold_cannot_be_withdrawn(db):
    tid = await funded_store(5_000, hold_days=7)
    with pytest.raises(InsufficientBalance):
        await request_withdrawal(tid, 100, CPF, "account:1")


@pytest.mark.parametrize("amount", [0, -5, 1.5])
async def test_bad_amounts_are_refused(db, amount):
    tid = await funded_store()
    with pytest.raises(InvalidAmount):
        await request_withdrawal(tid, amount, CPF, "account:1")


async def test_request_approve_complete_with_timestamps_actor_and_audit(db):
    tid = await funded_store(10_000)
    w = await request_withdrawal(tid, 4_000, CPF, "account:1")
    assert (await ledger.balance(tid)).total_cents == 6_000
    w = await approve_withdrawal(w.id, "admin:token:aa")
    assert w.status == WithdrawalStatus.PROCESSING and w.processing_at
    w = await complete_withdrawal(w.id, "admin:token:bb", transfer_id="E123")
    assert (
        w.status == WithdrawalStatus.COMPLETED and w.completed_at and w.acted_by == "admin:token:bb"
    )
    again = await complete_withdrawal(w.id, "admin:token:bb")  # double click
    assert again.completed_at == w.completed_at
    assert await ledger.account_total(ledger.PAYOUTS) == 0
    actions = (
        await AuditLog.filter(target_type="withdrawal")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["withdrawal.requested", "withdrawal.processing", "withdrawal.completed"]
    with pytest.raises(IllegalTransition):
        await reject_withdrawal(w.id, "admin:x", "too late")


async def test_rejection_returns_the_money(db):
    tid = await funded_store(10_000)
    w = await request_withdrawal(tid, 7_000, "+5511987654321", "account:1")
    await approve_withdrawal(w.id, "admin:x")
    w = await reject_withdrawal(w.id, "admin:x", "chave não pertence ao titular")
    assert w.status == WithdrawalStatus.REJECTED and w.reason and w.rejected_at
    bal = await ledger.balance(tid)
    assert bal.total_cents == bal.available_cents == 10_000


async def test_concurrent_requests_cannot_overdraw(db):
    """Runs on PostgreSQL (row lock on the tenant) and SQLite (serialised writes)."""
    tid = await funded_store(10_000)
    results = await asyncio.gather(
        *(request_withdrawal(tid, 3_000, CPF, f"account:{i}") for i in range(6)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, Withdrawal)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert len(ok) == 3 and len(refused) == 3, results
    assert (await ledger.balance(tid)).total_cents == 1_000

"""The ledger: balanced, append-only, idempotent; balance = sum of entries, always."""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tortoise.functions import Sum

from shop import ledger
from shop.errors import InsufficientBalance
from shop.models import LedgerEntry
from shop.withdrawals import reject_withdrawal, request_withdrawal
from tests.shop.helpers import make_order, make_store

PIX = "seller@example.com"


async def _sale(store, amount, fee_bps=500, hold_days=0):
    order = await make_order(store, reserve=False)
    pid = str(uuid.uuid4())
    await ledger.book_sale(pid, store["tenant"].id, order.id, amount, fee_bps, hold_days)
    return pid


async def test_sale_credits_amount_minus_fee_after_the_hold(db):
    store = await make_store()
    tid = store["tenant"].id
    pid = await _sale(store, 1990, fee_bps=500, hold_days=7)
    bal = await ledger.balance(tid)
    assert bal.total_cents == 1890 and bal.available_cents == 0 and bal.on_hold_cents == 1890
    later = await ledger.balance(tid, now=datetime.now(UTC) + timedelta(days=7, seconds=1))
    assert later.available_cents == 1890
    assert await ledger.account_total(ledger.FEES) == 100
    assert await ledger.account_total(ledger.CLEARING) == -1990
    assert not await ledger.book_sale(pid, tid, 1, 1990, 500, 7)  # idempotent by payment
    assert await LedgerEntry.all().count() == 3


async def test_reversal_can_make_the_balance_negative_and_blocks_withdrawals(db):
    store = await make_store()
    tid = store["tenant"].id
    keep = await _sale(store, 1000)
    gone = await _sale(store, 5000)
    await request_withdrawal(tid, 5700, PIX, "account:1")
    assert await ledger.book_reversal(gone, "chargeback")
    assert not await ledger.book_reversal(gone, "chargeback")
    bal = await ledger.balance(tid)
    assert bal.total_cents == 950 + 4750 - 5700 - 4750 < 0 and bal.withdrawable_cents == 0
    try:
        await request_withdrawal(tid, 1, PIX, "account:1")
    except InsufficientBalance as exc:
        assert "negativo" in exc.message() and "negative" in exc.message("en")
    else:
        raise AssertionError("withdrawal allowed with a negative balance")
    assert keep


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("sale"), st.integers(1, 100_000)),
        st.tuples(st.just("refund"), st.integers(0, 50)),
        st.tuples(st.just("withdraw"), st.integers(1, 120_000)),
        st.tuples(st.just("reject"), st.integers(0, 50)),
    ),
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
async def test_balance_is_the_sum_of_entries_for_any_sequence(db, ops):
    store = await make_store(stock=0)
    tid = store["tenant"].id
    sales: list[str] = []
    withdrawals: list[int] = []
    for op, value in ops:
        if op == "sale":
            sales.append(await _sale(store, value, fee_bps=250))
        elif op == "refund" and sales:
            await ledger.book_reversal(sales[value % len(sales)], "refund")
        elif op == "withdraw":
            before = await ledger.balance(tid)
            try:
                w = await request_withdrawal(tid, value, PIX, "account:1")
                withdrawals.append(w.id)
            except InsufficientBalance:
                assert value > before.withdrawable_cents
            else:
                assert value <= before.withdrawable_cents
        elif op == "reject" and withdrawals:
            await reject_withdrawal(withdrawals[value % len(withdrawals)], "admin:x", "test")
    account = ledger.seller_account(tid)
    entries = await LedgerEntry.filter(account=account).values_list("amount_cents", flat=True)
    assert (await ledger.balance(tid)).total_cents == sum(entries)
    sums = (
        await LedgerEntry.all()
        .group_by("txn_id")
        .annotate(s=Sum("amount_cents"))
        .values_list("s", flat=True)
    )
    assert all(int(s) == 0 for s in sums)  # every transaction is balanced

"""Partial refunds at Mercado Pago (the payment stays approved with part of it refunded): the
seller loses the refunded share less its part of the fee, once per new refunded total, and a
later full refund or chargeback reverses only what is left."""

import asyncio
import dataclasses
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tortoise.functions import Sum

from core.models import AuditLog
from shop import ledger
from shop.errors import InsufficientBalance, NegativeBalance
from shop.models import LedgerEntry, Order, Payment
from shop.payments.refunds import refund_order
from shop.payments.service import create_pix_payment
from shop.payments.sync import apply_provider_payment, sync_payment, sync_provider_payment
from shop.states import OrderStatus, PaymentStatus
from shop.withdrawals import request_withdrawal
from tests.shop.helpers import make_order, make_store

PIX = "seller@example.com"
PRICE = 1990
FEE_BPS = 550  # 5.5 %: the sale's fee is 109.45 → R$ 1,09
FEE = 109


@pytest.fixture
def svc55(svc):
    """The payment services with a 5.5 % fee and no hold (so the balance is withdrawable)."""
    return dataclasses.replace(svc, fee_bps=FEE_BPS, hold_days=0)


async def approved_sale(svc, mp):
    store = await make_store(price_cents=PRICE)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    return store, order, payment


async def refund_at_mp(svc, payment, amount_cents=None, key=None):
    """Money back to the buyer at Mercado Pago, through the real gateway (None = the rest)."""
    await svc.gateway.refund(payment.provider_payment_id, key or uuid.uuid4().hex, amount_cents)


async def net(payment, account):
    """What the bookings of one payment add up to on one account."""
    return ledger.net_by_account(await ledger.payment_entries(str(payment.id))).get(account, 0)


async def assert_every_transaction_balances():
    sums = (
        await LedgerEntry.all()
        .group_by("txn_id")
        .annotate(s=Sum("amount_cents"))
        .values_list("s", flat=True)
    )
    assert sums and all(int(s) == 0 for s in sums)


async def test_partial_refund_takes_the_share_less_its_fee_from_the_seller_once(svc55, mp):
    store, order, payment = await approved_sale(svc55, mp)
    tid = store["tenant"].id
    seller = ledger.seller_account(tid)
    assert (await ledger.balance(tid)).total_cents == PRICE - FEE
    await refund_at_mp(svc55, payment, 500)

    result = await sync_payment(svc55, str(payment.id), "system:test")
    # fee share of R$ 5,00: 109 × 500 / 1990 = 27.39 → 27; the seller gives back 473
    assert (
        "ledger: partial refund R$ 5,00 booked (seller −R$ 4,73, fee −R$ 0,27; "
        "R$ 5,00 of R$ 19,90 refunded in all)" in result.changes
    )
    assert (await ledger.balance(tid)).total_cents == PRICE - FEE - 473
    assert await ledger.account_total(ledger.FEES) == FEE - 27
    assert await ledger.account_total(ledger.CLEARING) == -PRICE + 500
    assert await net(payment, seller) == PRICE - FEE - 473
    local = await Payment.get(id=payment.id)
    assert local.status == PaymentStatus.APPROVED and local.refunded_cents == 500
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID
    audit = await AuditLog.get(action="payment.partially_refunded")
    assert audit.target_id == str(payment.id) and audit.tenant_id == tid
    assert audit.before == {"refunded_cents": 0}
    assert audit.after["refunded_cents"] == 500 and audit.after["seller_cents"] == -473
    assert audit.after["fee_cents"] == -27

    entries = await LedgerEntry.all().count()
    again = await sync_payment(svc55, str(payment.id), "system:test")  # the same news again
    assert not again.changed
    assert await LedgerEntry.all().count() == entries
    assert await AuditLog.filter(action="payment.partially_refunded").count() == 1
    await assert_every_transaction_balances()


@pytest.mark.parametrize("how", ["refund", "chargeback"])
async def test_partial_refunds_then_the_rest_net_every_account_to_zero(svc55, mp, how):
    store, order, payment = await approved_sale(svc55, mp)
    tid = store["tenant"].id
    await refund_at_mp(svc55, payment, 500)
    await sync_payment(svc55, str(payment.id), "system:test")
    await refund_at_mp(svc55, payment, 200)  # R$ 7,00 refunded in all

    result = await sync_payment(svc55, str(payment.id), "system:test")
    # cumulative fee share of R$ 7,00: 109 × 700 / 1990 = 38.34 → 38, so 11 more than 27
    assert (
        "ledger: partial refund R$ 2,00 booked (seller −R$ 1,89, fee −R$ 0,11; "
        "R$ 7,00 of R$ 19,90 refunded in all)" in result.changes
    )
    assert (await ledger.balance(tid)).total_cents == PRICE - FEE - 700 + 38
    assert await ledger.account_total(ledger.FEES) == FEE - 38
    assert await ledger.account_total(ledger.CLEARING) == -PRICE + 700

    if how == "refund":
        result = await refund_order(svc55, order.id, "account:1")  # the rest, R$ 12,90
        remote = await mp.control.payment(int(payment.provider_payment_id))
        assert remote["status"] == "refunded" and remote["transaction_amount_refunded"] == 19.9
    else:
        await mp.control.chargeback(int(payment.provider_payment_id))
        result = await sync_payment(svc55, str(payment.id), "system:test")
    assert f"order {order.id} paid → refunded" in result.changes
    assert f"ledger: {how} reversal booked" in result.changes
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    for account in (ledger.seller_account(tid), ledger.FEES, ledger.CLEARING):
        assert await net(payment, account) == 0
        assert await ledger.account_total(account) == 0
    reversal = await LedgerEntry.filter(idempotency_key=f"reversal:{payment.id}").values_list(
        "account", "amount_cents"
    )
    assert sorted(reversal) == sorted(
        [
            (ledger.CLEARING, PRICE - 700),
            (ledger.seller_account(tid), -(PRICE - FEE - 662)),
            (ledger.FEES, -(FEE - 38)),
        ]
    )
    assert not (await sync_payment(svc55, str(payment.id), "system:test")).changed
    await assert_every_transaction_balances()


async def test_repeated_and_older_pictures_change_nothing(svc55, mp):
    """Webhooks come twice and fetches race: a picture with less refunded than we know is
    older news, before and after the full refund."""
    store, order, payment = await approved_sale(svc55, mp)
    pid = payment.provider_payment_id
    await refund_at_mp(svc55, payment, 500)
    at_500 = await svc55.gateway.get_payment(pid)
    await refund_at_mp(svc55, payment, 200)
    at_700 = await svc55.gateway.get_payment(pid)
    assert (at_500.refunded_cents, at_700.refunded_cents) == (500, 700)

    first = await apply_provider_payment(svc55, at_700, "webhook")  # 0 → 700 in one step
    assert any("partial refund R$ 7,00 booked" in c for c in first.changes)
    entries = await LedgerEntry.all().count()
    for picture in (at_700, at_500, at_700, at_500):
        assert not (await apply_provider_payment(svc55, picture, "webhook")).changed
    assert not (await sync_provider_payment(svc55, pid, "webhook")).changed
    local = await Payment.get(id=payment.id)
    assert local.refunded_cents == 700 and local.status_detail == "partially_refunded"
    assert await LedgerEntry.all().count() == entries

    await refund_at_mp(svc55, payment)
    assert (await sync_provider_payment(svc55, pid, "webhook")).changed
    entries = await LedgerEntry.all().count()
    for picture in (at_500, at_700):
        assert not (await apply_provider_payment(svc55, picture, "webhook")).changed
    local = await Payment.get(id=payment.id)
    assert local.status == PaymentStatus.REFUNDED and local.refunded_cents == PRICE
    assert await LedgerEntry.all().count() == entries
    assert await net(payment, ledger.seller_account(store["tenant"].id)) == 0


async def test_concurrent_syncs_of_one_partial_refund_book_it_once(svc55, mp):
    store, order, payment = await approved_sale(svc55, mp)
    await refund_at_mp(svc55, payment, 500)
    results = await asyncio.gather(
        *(
            sync_provider_payment(svc55, payment.provider_payment_id, f"webhook:{i}")
            for i in range(5)
        )
    )
    booked = [c for r in results for c in r.changes if c.startswith("ledger: partial refund")]
    assert len(booked) == 1
    assert await LedgerEntry.filter(idempotency_key__startswith="refund:").count() == 3
    assert (await ledger.balance(store["tenant"].id)).total_cents == PRICE - FEE - 473


async def test_approved_and_partly_refunded_while_unseen_books_sale_then_refund(svc55, mp):
    store = await make_store(price_cents=PRICE)
    order = await make_order(store)
    payment = await create_pix_payment(svc55, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    await refund_at_mp(svc55, payment, 500)
    result = await sync_payment(svc55, str(payment.id), "system:test")
    assert f"order {order.id} pending → paid" in result.changes
    assert any(c.startswith("ledger: sale") for c in result.changes)
    assert any(c.startswith("ledger: partial refund R$ 5,00") for c in result.changes)
    assert (await ledger.balance(store["tenant"].id)).total_cents == PRICE - FEE - 473


async def test_a_refund_recorded_before_it_was_booked_is_booked_on_resync(svc55, mp):
    """Payments synced before partial refunds were booked have `refunded_cents` set and no
    booking: a resync (admin, reconciler, next webhook) books it."""
    store, order, payment = await approved_sale(svc55, mp)
    await refund_at_mp(svc55, payment, 500)
    remote = await svc55.gateway.get_payment(payment.provider_payment_id)
    await Payment.filter(id=payment.id).update(
        refunded_cents=500, status_detail=remote.status_detail
    )
    result = await sync_payment(svc55, str(payment.id), "admin:token:x")
    assert any(c.startswith("ledger: partial refund R$ 5,00") for c in result.changes)
    assert (await ledger.balance(store["tenant"].id)).total_cents == PRICE - FEE - 473
    assert not (await sync_payment(svc55, str(payment.id), "admin:token:x")).changed


async def test_withdrawable_balance_drops_by_the_refunded_share(svc55, mp):
    store, order, payment = await approved_sale(svc55, mp)
    tid = store["tenant"].id
    assert (await ledger.balance(tid)).withdrawable_cents == PRICE - FEE
    await refund_at_mp(svc55, payment, 500)
    await sync_payment(svc55, str(payment.id), "system:test")
    bal = await ledger.balance(tid)
    assert bal.withdrawable_cents == bal.available_cents == PRICE - FEE - 473
    with pytest.raises(InsufficientBalance):
        await request_withdrawal(tid, PRICE - FEE, PIX, "account:1")
    with pytest.raises(InsufficientBalance):
        await request_withdrawal(tid, PRICE - FEE - 472, PIX, "account:1")
    await request_withdrawal(tid, PRICE - FEE - 473, PIX, "account:1")
    assert (await ledger.balance(tid)).total_cents == 0


async def test_partial_refund_after_a_withdrawal_leaves_a_debt_that_blocks_the_next(svc55, mp):
    store, order, payment = await approved_sale(svc55, mp)
    tid = store["tenant"].id
    await request_withdrawal(tid, PRICE - FEE, PIX, "account:1")  # took everything
    await refund_at_mp(svc55, payment, 500)
    await sync_payment(svc55, str(payment.id), "system:test")
    bal = await ledger.balance(tid)
    assert bal.total_cents == -473 and bal.withdrawable_cents == 0
    with pytest.raises(NegativeBalance):
        await request_withdrawal(tid, 1, PIX, "account:1")


# --- the ledger alone -----------------------------------------------------------------------
async def _sale(amount, fee_bps, hold_days=0):
    store = await make_store(stock=0)
    order = await make_order(store, reserve=False)
    pid = str(uuid.uuid4())
    await ledger.book_sale(pid, store["tenant"].id, order.id, amount, fee_bps, hold_days)
    return store["tenant"].id, pid


async def test_partial_refund_needs_a_live_sale_and_a_total_within_it(db):
    assert await ledger.book_partial_refund(str(uuid.uuid4()), 100) is None  # no sale
    tid, pid = await _sale(1000, 500, hold_days=7)
    with pytest.raises(ValueError):
        await ledger.book_partial_refund(pid, 1001)
    assert await ledger.book_partial_refund(pid, 0) is None
    booked = await ledger.book_partial_refund(pid, 400)
    assert booked == ledger.PartialRefund(400, 400, 20) and booked.seller_cents == 380
    assert await ledger.book_partial_refund(pid, 400) is None
    assert await ledger.book_partial_refund(pid, 300) is None  # older news
    bal = await ledger.balance(tid)  # the sale is on hold, the debit counts at once
    assert bal.total_cents == 950 - 380 and bal.available_cents == -380
    assert bal.withdrawable_cents == 0
    assert await ledger.book_reversal(pid, "refund")
    assert await ledger.book_partial_refund(pid, 500) is None  # reversed: nothing left
    assert (await ledger.balance(tid)).total_cents == 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    amount=st.integers(1, 100_000),
    fee_bps=st.integers(0, 10_000),
    fractions=st.lists(st.fractions(0, 1), max_size=8),
    data=st.data(),
)
async def test_any_sequence_of_partial_refunds_then_the_rest_nets_to_zero(
    db, amount, fee_bps, fractions, data
):
    tid, pid = await _sale(amount, fee_bps)
    fee = ledger.net_by_account(await ledger.payment_entries(pid)).get(ledger.FEES, 0)
    seller = ledger.seller_account(tid)
    totals = sorted(int(amount * f) for f in fractions)  # cumulative, non-decreasing, ≤ sale
    booked = 0
    for total in totals:
        # a replay or an older picture may arrive before each new total: it books nothing
        stale = data.draw(st.integers(0, booked))
        assert await ledger.book_partial_refund(pid, stale) is None
        result = await ledger.book_partial_refund(pid, total)
        assert (result is not None) == (total > booked)
        booked = max(booked, total)
        entries = await ledger.payment_entries(pid)
        net = ledger.net_by_account(entries)
        refunds = ledger.net_by_account(
            [e for e in entries if e.idempotency_key.startswith("refund:")]
        )
        # seller + fees debits are the refunded amount; the fee back is its exact share
        assert -(refunds.get(seller, 0) + refunds.get(ledger.FEES, 0)) == booked
        assert -refunds.get(ledger.FEES, 0) == (2 * fee * booked + amount) // (2 * amount)
        assert refunds.get(ledger.CLEARING, 0) == booked
        assert net.get(seller, 0) >= 0 and net.get(ledger.FEES, 0) >= 0
    await ledger.book_reversal(pid, "refund")
    net = ledger.net_by_account(await ledger.payment_entries(pid))
    assert set(net.values()) <= {0}
    assert (await ledger.balance(tid)).total_cents == 0
    sums = (
        await LedgerEntry.filter(idempotency_key__contains=pid)
        .group_by("txn_id")
        .annotate(s=Sum("amount_cents"))
        .values_list("s", flat=True)
    )
    assert all(int(s) == 0 for s in sums)

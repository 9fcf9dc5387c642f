"""Refunds of one cart's payment at the same moment (issue 17 follow-up): two lines, or a line
and the whole cart, pressed together. One refund of a payment is in flight at a time
(`shop.payments.refund_lease`): the winner's refund reaches Mercado Pago and is booked, the
others are refused with `RefundInProgress` before anything is sent, and a retry after it goes
through, so Mercado Pago never refunds more than the PIX and the ledger always balances."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from shop import ledger, refund_holds
from shop.errors import RefundInProgress
from shop.models import Order, RefundLease
from shop.payments.refunds import operator_refund, refund_order
from shop.states import OrderStatus
from tests.shop.test_cart_payments import REFUNDS, _fee_back, assert_ledger_invariant, paid_cart


@pytest.fixture
def svc0(svc):
    """5 % fee, no hold: the balance is the seller's at once."""
    return dataclasses.replace(svc, hold_days=0)


def _split(results: list[object]) -> tuple[list[int], list[BaseException]]:
    won = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    return won, lost


async def _statuses(cart_id: int) -> list[str]:
    return [o.status for o in await Order.filter(cart_id=cart_id).order_by("id")]


async def test_two_line_refunds_at_once_one_is_sent_the_other_refused_then_retried(svc0, mp):
    store, cart, payment, lines, _ = await paid_cart(svc0, mp, coupon_code="DEZ")
    tenant_id = store["tenant"].id
    before = (await ledger.balance(tenant_id)).total_cents
    results = await asyncio.gather(
        refund_order(svc0, lines[0].id, "account:1"),
        refund_order(svc0, lines[1].id, "account:1"),
        return_exceptions=True,
    )
    won, lost = _split(results)
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], RefundInProgress)
    assert "em andamento" in lost[0].message("pt-BR")
    assert "in progress" in lost[0].message("en")
    winner, loser = lines[won[0]], lines[1 - won[0]]
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert [r.amount_cents for r in remote.refunds] == [winner.total_cents]
    expected = [OrderStatus.PAID] * 3
    expected[won[0]] = OrderStatus.REFUNDED
    assert await _statuses(cart.id) == expected
    fee = ledger.fee_cents(cart.total_cents, 500)
    moved = before - (await ledger.balance(tenant_id)).total_cents
    assert moved == winner.total_cents - _fee_back(fee, winner.total_cents, cart.total_cents)
    assert await refund_holds.refund_holds(str(payment.id), tenant_id) == []
    assert await RefundLease.all().count() == 0  # given back once booked
    await assert_ledger_invariant(tenant_id)
    # the refused line, pressed again once the first is booked: its own total goes back
    await refund_order(svc0, loser.id, "account:1")
    assert [r.amount_cents for r in remote.refunds] == [winner.total_cents, loser.total_cents]
    assert sum(r.amount_cents for r in remote.refunds) <= payment.amount_cents
    assert (await _statuses(cart.id)).count(OrderStatus.REFUNDED) == 2
    await assert_ledger_invariant(tenant_id)


async def test_a_line_racing_the_whole_cart_never_refunds_more_than_the_pix(svc0, mp):
    store, cart, payment, lines, _ = await paid_cart(svc0, mp, coupon_code="DEZ")
    tenant_id = store["tenant"].id
    results = await asyncio.gather(
        refund_order(svc0, lines[1].id, "account:1"),
        refund_order(svc0, lines[0].id, "account:1", whole_cart=True),
        operator_refund(svc0, lines[2].id, "admin:op", "duplicate sale", whole_cart=True),
        return_exceptions=True,
    )
    won, lost = _split(results)
    assert len(won) == 1 and len(lost) == 2, results
    assert all(isinstance(e, RefundInProgress) for e in lost)
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert len(remote.refunds) == 1  # the refused ones asked Mercado Pago nothing
    assert (await mp.control.requests()).get(REFUNDS, 0) == 1
    # then the whole cart: all that is left, every line refunded, the seller back to zero
    await refund_order(svc0, lines[0].id, "account:1", whole_cart=True)
    assert remote.status == "refunded"
    assert sum(r.amount_cents for r in remote.refunds) == payment.amount_cents
    assert set(await _statuses(cart.id)) == {OrderStatus.REFUNDED}
    assert (await ledger.balance(tenant_id)).total_cents == 0
    assert await refund_holds.refund_holds(str(payment.id), tenant_id) == []
    await assert_ledger_invariant(tenant_id)


async def test_a_live_lease_refuses_and_an_expired_one_is_taken_over(svc0, mp):
    store, cart, payment, lines, _ = await paid_cart(svc0, mp)
    lease = await RefundLease.create(
        payment_id=payment.id, token="other", expires_at=datetime.now(UTC) + timedelta(minutes=1)
    )
    with pytest.raises(RefundInProgress):
        await refund_order(svc0, lines[2].id, "account:1")
    assert (await mp.control.requests()).get(REFUNDS, 0) == 0
    # its holder died: once expired, the next refund takes it over and goes through
    lease.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await lease.save()
    await refund_order(svc0, lines[2].id, "account:1")
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert [r.amount_cents for r in remote.refunds] == [lines[2].total_cents]
    assert await RefundLease.all().count() == 0
    await assert_ledger_invariant(store["tenant"].id)


async def test_a_lost_answer_or_a_429_refunds_the_line_once_and_frees_the_lease(svc0, mp):
    store, cart, payment, lines, _ = await paid_cart(svc0, mp)
    remote = mp.state.payments[int(payment.provider_payment_id)]
    await mp.control.set_faults(lose_answers=1)  # refunded, but the answer never arrives
    await refund_order(svc0, lines[0].id, "account:1")
    await mp.control.set_faults(api_error_status=429, api_error_count=1, retry_after=0)
    await refund_order(svc0, lines[1].id, "account:1")
    assert [r.amount_cents for r in remote.refunds] == [lines[0].total_cents, lines[1].total_cents]
    assert await RefundLease.all().count() == 0
    assert await refund_holds.refund_holds(str(payment.id), store["tenant"].id) == []
    await assert_ledger_invariant(store["tenant"].id)

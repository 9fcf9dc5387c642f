"""A cart's PIX approved after one of its lines closed unpaid (issue 17 follow-up). The path
that closes one line of an open cart is the buyer's "Cancelar" on that line's order
(`vt:cancel:<order>` → `shop.orders.cancel_order`, then `cancel_charge`, which finds no
charge of its own for a line that is not the lead): the cart's PIX stays payable for the whole
total. Paid then, the other lines are paid and the closed line's total goes back at once, as
one partial refund booked against the cart's sale."""

from __future__ import annotations

import dataclasses

import pytest

from core.models import AuditLog
from shop import ledger
from shop.cart_checkout import checkout_cart
from shop.models import Order, Payment, RefundLease
from shop.orders import cancel_order
from shop.payments.cancel import cancel_charge
from shop.payments.payment_reconciler import reconcile_once
from shop.payments.refunds import refund_order
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from tests.shop.cart_helpers import BUYER, coupon, fill_cart, request, three_line_store
from tests.shop.test_cart_payments import REFUNDS, _fee_back, assert_ledger_invariant


@pytest.fixture
def svc0(svc):
    """5 % fee, no hold: the balance is the seller's at once."""
    return dataclasses.replace(svc, hold_days=0)


async def _cart_with_a_cancelled_line(svc, mp):
    store = await three_line_store()
    await coupon(store, max_uses=10)
    await fill_cart(store, {"a": 2, "b": 1, "c": 3})
    cart, payment = await checkout_cart(svc, request(store, coupon_code="DEZ"))
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    # what the worker's on_cancel does for the order of line 2
    await cancel_order(lines[1].id, f"buyer:{BUYER}")
    assert await cancel_charge(svc, lines[1].id, f"buyer:{BUYER}") is None
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert remote.status == "pending"  # the cart's PIX can still be paid, for the whole total
    return store, cart, payment, lines, remote


async def test_pix_paid_after_a_line_was_cancelled_refunds_exactly_that_line(svc0, mp):
    store, cart, payment, lines, remote = await _cart_with_a_cancelled_line(svc0, mp)
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    result = await sync_payment(svc0, str(payment.id), "system:webhook")
    statuses = [o.status for o in await Order.filter(cart_id=cart.id).order_by("id")]
    assert statuses == [OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.PAID]
    cancelled = lines[1]
    assert [r.amount_cents for r in remote.refunds] == [cancelled.total_cents]
    assert remote.status == "approved"  # the other lines stay paid
    assert (await Payment.get(id=payment.id)).refunded_cents == cancelled.total_cents
    fee = ledger.fee_cents(cart.total_cents, 500)
    kept = cart.total_cents - fee - cancelled.total_cents
    kept += _fee_back(fee, cancelled.total_cents, cart.total_cents)
    assert (await ledger.balance(store["tenant"].id)).total_cents == kept
    assert any("closed before the PIX was paid" in c for c in result.changes)
    audit = await AuditLog.get(action="payment.auto_refund", target_id=str(payment.id))
    assert audit.after["order_ids"] == [cancelled.id]
    await assert_ledger_invariant(store["tenant"].id)
    # replayed (webhook, reconciler): nothing more is asked of Mercado Pago
    again = await sync_payment(svc0, str(payment.id), "system:reconciler")
    assert not again.changed
    assert (await mp.control.requests()).get(REFUNDS, 0) == 1
    # a paid line refunded afterwards: its own total, and the cart's balance goes to zero
    await refund_order(svc0, lines[0].id, "account:1")
    await refund_order(svc0, lines[2].id, "account:1")
    assert remote.status == "refunded"
    assert sum(r.amount_cents for r in remote.refunds) == cart.total_cents
    assert (await ledger.balance(store["tenant"].id)).total_cents == 0
    await assert_ledger_invariant(store["tenant"].id)


async def test_the_closed_lines_refund_waits_for_a_refund_in_flight_then_goes(svc0, mp):
    store, cart, payment, lines, remote = await _cart_with_a_cancelled_line(svc0, mp)
    await RefundLease.create(payment_id=payment.id, token="other", expires_at="2100-01-01")
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    first = await sync_payment(svc0, str(payment.id), "system:webhook")
    assert "waits for a refund in flight" in first.detail
    assert remote.refunds == []
    statuses = [o.status for o in await Order.filter(cart_id=cart.id).order_by("id")]
    assert statuses == [OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.PAID]
    await RefundLease.filter(payment_id=payment.id).delete()
    report = await reconcile_once(svc0)  # the reconciler's next pass asks again
    assert any("closed before the PIX was paid" in c for c in report.changes), report.changes
    assert [r.amount_cents for r in remote.refunds] == [lines[1].total_cents]
    assert (await Payment.get(id=payment.id)).refunded_cents == lines[1].total_cents
    await assert_ledger_invariant(store["tenant"].id)
    assert not (await reconcile_once(svc0)).changes  # settled: not picked again


async def test_the_carts_pix_is_cancelled_only_when_its_last_line_is(svc0, mp):
    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 1})
    cart, payment = await checkout_cart(svc0, request(store))
    lead, other = await Order.filter(cart_id=cart.id).order_by("id")
    await cancel_order(lead.id, f"buyer:{BUYER}")  # the lead line carries the payment
    assert await cancel_charge(svc0, lead.id, f"buyer:{BUYER}") is None
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert remote.status == "pending"  # still pays the other line
    await cancel_order(other.id, f"buyer:{BUYER}")
    result = await cancel_charge(svc0, other.id, f"buyer:{BUYER}")
    assert result is not None and remote.status == "cancelled"
    assert (await Payment.get(id=payment.id)).status == "cancelled"

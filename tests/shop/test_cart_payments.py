"""A cart's one PIX against the Mercado Pago stand-in (issue 17): paid → every line paid and
one ledger sale; a line whose stock was lost waits alone and a restock fills it; expiry and
cancel close every line; a line refund is one partial refund of that line's total."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from tortoise.functions import Sum

from shop import delivery, ledger
from shop.cart_checkout import (
    cancel_cart,
    cart_for_order,
    checkout_cart,
    payment_for_order,
)
from shop.models import CartLine, Coupon, LedgerEntry, Order, Payment, StockItem
from shop.payments.payment_reconciler import Policy, reconcile_once
from shop.payments.refunds import refund_order
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, PaymentStatus, StockStatus
from shop.stock import add_stock
from shop.waiting_stock import retry_waiting_stock
from tests.shop.cart_helpers import (
    BUYER,
    VAULT,
    coupon,
    fill_cart,
    held,
    request,
    three_line_store,
)

REFUNDS = r"POST /v1/payments/{id}/refunds"


@pytest.fixture
def svc0(svc):
    """5 % fee, no hold: the balance is the seller's at once."""
    return dataclasses.replace(svc, hold_days=0)


async def paid_cart(svc, mp, *, coupon_code=None, before_approval=None):
    store = await three_line_store()
    await coupon(store, max_uses=10)
    await fill_cart(store, {"a": 2, "b": 1, "c": 3})
    cart, payment = await checkout_cart(svc, request(store, coupon_code=coupon_code))
    if before_approval is not None:
        await before_approval(store, cart)
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    result = await sync_payment(svc, str(payment.id), "system:test")
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    return store, cart, await Payment.get(id=payment.id), lines, result


async def test_three_lines_one_coupon_paid_every_line_and_one_sale(svc0, mp):
    store, cart, payment, lines, result = await paid_cart(svc0, mp, coupon_code="DEZ")
    subtotal = 2 * 1990 + 1000 + 3 * 555
    assert cart.subtotal_cents == subtotal and cart.discount_cents == subtotal // 10
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert remote.amount_cents == cart.total_cents == payment.amount_cents  # one PIX, the total
    assert len(mp.state.payments) == 1
    assert payment.cart_id == cart.id and payment.order_id == lines[0].id
    assert [o.status for o in lines] == [OrderStatus.PAID] * 3
    assert sum(o.total_cents for o in lines) == cart.total_cents
    assert sum(o.discount_cents for o in lines) == cart.discount_cents
    assert all(o.wake_at is not None for o in lines)  # each owes its delivery
    assert result.changes.count(f"delivery enqueued (order {lines[1].id})") == 1
    sales = await LedgerEntry.filter(idempotency_key=f"sale:{payment.id}", account=ledger.CLEARING)
    assert len(sales) == 1 and sales[0].amount_cents == -cart.total_cents
    assert all(f"#{o.id} " in sales[0].memo for o in lines)  # the sale names its lines
    fee = ledger.fee_cents(cart.total_cents, 500)
    assert (await ledger.balance(store["tenant"].id)).total_cents == cart.total_cents - fee
    assert await CartLine.filter(buyer_discord_id=BUYER).count() == 0  # cleared once charged
    for o in lines:  # any line leads to the cart and its one payment
        assert (await payment_for_order(o.id)).id == payment.id
        assert (await cart_for_order(o.id)).id == cart.id
    again = await sync_payment(svc0, str(payment.id), "system:test")
    assert not again.changed  # replayed: nothing moves, nothing booked twice
    assert await LedgerEntry.filter(idempotency_key=f"sale:{payment.id}").count() == 3
    await assert_ledger_invariant(store["tenant"].id)


async def assert_ledger_invariant(tenant_id: int) -> None:
    """The balance is the sum of the seller's entries and every transaction balances."""
    account = ledger.seller_account(tenant_id)
    entries = await LedgerEntry.filter(account=account).values_list("amount_cents", flat=True)
    assert (await ledger.balance(tenant_id)).total_cents == sum(entries)
    sums = await LedgerEntry.all().group_by("txn_id").annotate(s=Sum("amount_cents")).values("s")
    assert all(row["s"] == 0 for row in sums)


async def test_a_line_that_lost_its_stock_waits_alone_and_a_restock_fills_it(svc, mp):
    async def lose_b(store, cart):  # B's item and shelf are gone (e.g. removed by the seller)
        await StockItem.filter(variation_id=store["b"].id).delete()

    store, cart, _, lines, _ = await paid_cart(svc, mp, before_approval=lose_b)
    outcomes = {o.variation_id: await delivery.prepare(o.id, VAULT, "test") for o in lines}
    assert outcomes[store["b"].id].outcome == delivery.Outcome.WAITING
    for name in ("a", "c"):
        assert outcomes[store[name].id].outcome == delivery.Outcome.DELIVER
        await delivery.mark_delivered(outcomes[store[name].id].order.id, "dm", "test")
    by_variation = {o.variation_id: o for o in await Order.filter(cart_id=cart.id)}
    assert by_variation[store["b"].id].status == OrderStatus.WAITING_STOCK
    assert by_variation[store["a"].id].status == OrderStatus.DELIVERED
    assert by_variation[store["c"].id].status == OrderStatus.DELIVERED
    assert (await retry_waiting_stock(store["tenant"].id)).delivered == 0
    await add_stock(VAULT, store["tenant"].id, store["b"].id, "NEW-B", "t", hash_key="k")
    report = await retry_waiting_stock(store["tenant"].id, redis=svc.redis)
    assert report.order_ids == [by_variation[store["b"].id].id]
    filled = await delivery.prepare(by_variation[store["b"].id].id, VAULT, "test")
    assert filled.outcome == delivery.Outcome.DELIVER and filled.items == ["NEW-B"]


async def test_expired_pix_closes_every_line_and_releases_everything(svc, mp):
    store = await three_line_store()
    await coupon(store, max_uses=1)
    await fill_cart(store, {"a": 2, "b": 1, "c": 3})
    cart, payment = await checkout_cart(svc, request(store, coupon_code="DEZ"))
    assert (await Coupon.get(code="DEZ")).uses == 1
    await mp.control.expire(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {OrderStatus.EXPIRED}
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 0
    assert await held(store["a"], StockStatus.AVAILABLE) == 5
    assert (await Coupon.get(code="DEZ")).uses == 0  # the cart's one use, given back once
    assert await LedgerEntry.all().count() == 0


async def test_buyer_cancels_the_cart_and_its_pix(svc, mp):
    store = await three_line_store()
    await fill_cart(store, {"a": 1, "c": 1})
    cart, payment = await checkout_cart(svc, request(store))
    await cancel_cart(cart.id, f"buyer:{BUYER}", svc=svc)
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {OrderStatus.CANCELLED}
    assert mp.state.payments[int(payment.provider_payment_id)].status == "cancelled"
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.CANCELLED
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 0


async def test_double_click_checkout_charges_once(svc, mp):
    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 1})
    req = request(store)
    first = await checkout_cart(svc, req)
    assert await checkout_cart(svc, req) == first  # the second click: same cart, same PIX
    # clicks at the same moment: one cart, one PIX at Mercado Pago, shown to every click
    other = request(store, buyer="888")
    await fill_cart(store, {"a": 1, "b": 1}, buyer="888")
    results = await asyncio.gather(
        *(checkout_cart(svc, other) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, tuple) for r in results), results
    carts = {r[0].id for r in results}
    assert len(carts) == 1 and len({r[1].id for r in results}) == 1
    assert len(mp.state.payments) == 2
    statuses = {o.status for o in await Order.filter(cart_id=carts.pop())}
    assert statuses == {OrderStatus.PENDING}


def _fee_back(fee: int, part: int, total: int) -> int:
    return int((Decimal(fee) * part / total).quantize(Decimal(1), ROUND_HALF_UP))


async def test_line_refund_is_one_partial_refund_of_that_line_then_whole(svc0, mp):
    store, cart, payment, lines, _ = await paid_cart(svc0, mp, coupon_code="DEZ")
    tenant_id = store["tenant"].id
    before = (await ledger.balance(tenant_id)).total_cents
    line = lines[1]  # B, with its share of the discount
    result = await refund_order(svc0, line.id, "account:1")
    remote = mp.state.payments[int(payment.provider_payment_id)]
    assert [r.amount_cents for r in remote.refunds] == [line.total_cents]
    assert remote.status == "approved"
    fee = ledger.fee_cents(cart.total_cents, 500)
    moved = before - (await ledger.balance(tenant_id)).total_cents
    assert moved == line.total_cents - _fee_back(fee, line.total_cents, cart.total_cents)
    statuses = [o.status for o in await Order.filter(cart_id=cart.id).order_by("id")]
    assert statuses == [OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.PAID]
    assert any("cart line" in c for c in result.changes)
    await assert_ledger_invariant(tenant_id)
    # again: nothing reaches Mercado Pago, nothing moves
    again = await refund_order(svc0, line.id, "account:1")
    assert not again.changed
    assert (await mp.control.requests()).get(REFUNDS, 0) == 1
    assert len(remote.refunds) == 1
    # the rest of the cart at once: every other line refunded, the balance back to zero
    await refund_order(svc0, lines[0].id, "account:1", whole_cart=True)
    assert remote.status == "refunded"
    statuses = {o.status for o in await Order.filter(cart_id=cart.id)}
    assert statuses == {OrderStatus.REFUNDED}
    assert (await ledger.balance(tenant_id)).total_cents == 0
    assert sum(r.amount_cents for r in remote.refunds) == cart.total_cents
    await assert_ledger_invariant(tenant_id)


async def test_reconciler_keeps_every_line_while_the_cart_pix_is_open(svc, mp):
    """Past the reservation, a line without its own payment is not an "order without a PIX":
    the cart's PIX is open, so the provider decides (here: paid late, every line paid)."""
    store = await three_line_store()
    await fill_cart(store, {"a": 1, "b": 1, "c": 1})
    cart, payment = await checkout_cart(svc, request(store))
    later = datetime.now(UTC) + timedelta(minutes=35)
    await reconcile_once(svc, now=later)
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {OrderStatus.PENDING}
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    await reconcile_once(svc, Policy(recheck_every=timedelta(0)), now=later)
    assert {o.status for o in await Order.filter(cart_id=cart.id)} == {OrderStatus.PAID}

"""A connected store's cart (issue 17): the one PIX lands in the seller's own Mercado Pago
account, every line is paid, and the platform ledger books nothing."""

from __future__ import annotations

from shop import ledger
from shop.cart_checkout import checkout_cart
from shop.models import ConnectedCharge, LedgerEntry, Order
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from tests.helpers.portal import make_seller
from tests.payments.connected_helpers import SELLER_MP_ID, connect_seller, connected_portal
from tests.shop.cart_helpers import add_variation, fill_cart, request, stock_up
from tests.shop.helpers import make_store
from web.common import payment_services


async def test_connected_cart_pays_every_line_and_books_no_balance(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=2000, stock=0, tenant=seller.tenant)
        store["a"] = store["variation"]
        await stock_up(store, store["a"], 2)
        store["b"] = await add_variation(store, "B", 1000, stock=2)
        await connect_seller(seller)
        await fill_cart(store, {"a": 1, "b": 2})
        svc = payment_services(app)
        cart, payment = await checkout_cart(svc, request(store))
        await mp.control.approve(payment.provider_payment_id)
        await sync_payment(svc, str(payment.id), "test")
        lines = await Order.filter(cart_id=cart.id)
        assert {o.status for o in lines} == {OrderStatus.PAID} and len(lines) == 2
        remote = await mp.control.payment(payment.provider_payment_id)
        assert remote["collector_id"] == SELLER_MP_ID
        assert remote["transaction_amount"] == 40.0
        charge = await ConnectedCharge.get(payment_id=payment.id)
        assert charge.sold_at is not None and charge.amount_cents == 4000
        assert await LedgerEntry.all().count() == 0
        assert (await ledger.balance(seller.tenant.id)).total_cents == 0

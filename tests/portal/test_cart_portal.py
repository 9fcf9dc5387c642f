"""Carts in the seller's portal (issue 17): the order page of a cart line shows the cart's
other lines, totals and coupon; the orders list shows the cart; a line is refunded alone, then
the rest of the cart at once; another store sees none of it; the forms carry CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from werkzeug.datastructures import MultiDict

from shop.cart_checkout import checkout_cart
from shop.models import Order, Payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from tests.helpers.portal import make_seller, portal_settings
from tests.shop.cart_helpers import add_variation, coupon, fill_cart, request
from tests.shop.helpers import MP_FAST, make_store
from web.common import payment_services


async def _paid_cart(app: Any, mp: Any, tenant: Any) -> tuple[Any, list[Order], Payment]:
    """A three-line cart (2 × 19,90 + 10,00 + 5,55) with coupon DEZ (10 %), paid by PIX."""
    store = await make_store(price_cents=1990, stock=5, tenant=tenant)
    store["a"] = store["variation"]
    store["b"] = await add_variation(store, "Curso", 1000, 5)
    store["c"] = await add_variation(store, "Ebook", 555, 5)
    await coupon(store, max_uses=10)
    await fill_cart(store, {"a": 2, "b": 1, "c": 1})
    svc = payment_services(app)
    cart, payment = await checkout_cart(svc, request(store, coupon_code="DEZ"))
    await mp.control.approve(int(payment.provider_payment_id), notify=False)
    await sync_payment(svc, str(payment.id), "test")
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    return cart, lines, await Payment.get(id=payment.id)


@asynccontextmanager
async def _portal(tmp_path: Any, db: str, redis_url: str) -> AsyncIterator[tuple[Any, Any]]:
    """(a started portal app charging through the Mercado Pago stand-in, the stand-in)."""
    from sandbox.mercadopago.testing import mp_harness
    from web.portal import create_app

    async with mp_harness(MP_FAST) as mp:
        app = create_app(
            portal_settings(
                tmp_path,
                db,
                redis_url,
                MERCADOPAGO_API_BASE=mp.url,
                MERCADOPAGO_ACCESS_TOKEN="TEST-token",
            )
        )
        async with app.test_app():
            yield app, mp


async def test_order_page_shows_the_cart_and_refunds_a_line_then_the_whole_cart(
    db, redis_url, tmp_path
):
    async with _portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        cart, lines, payment = await _paid_cart(app, mp, seller.tenant)
        assert [o.status for o in lines] == [OrderStatus.PAID] * 3
        status, html = await seller.text(f"/orders/{lines[1].id}")
        assert status == 200 and f"Carrinho #{cart.id}" in html
        for line in lines:  # every line, with its own refund form
            assert f'id="cart-line-{line.id}"' in html
            assert f'action="/orders/{line.id}/refund"' in html
        assert "Key — 1 mês × 2" in html and "Curso — v × 1" in html
        # subtotal 2 × 19,90 + 10,00 + 5,55; 10 % off split over the lines
        assert "R$ 55,35" in html and "-R$ 5,53 (DEZ)" in html
        assert "R$ 49,82" in html and 'id="refund-cart"' in html
        forms = re.findall(r"<form method=\"post\"[^>]*>(.*?)</form>", html, re.S)
        assert forms and all('name="csrf_token"' in f for f in forms)
        _, listing = await seller.text("/orders")
        assert listing.count(f"#{cart.id}</span>") == 3

        # line 2 alone: Mercado Pago refunds its total, the other lines stay paid
        resp = await seller.post(f"/orders/{lines[1].id}/refund")
        assert resp.status_code == 302
        after = {o.id: o.status for o in await Order.filter(cart_id=cart.id)}
        assert after[lines[1].id] == OrderStatus.REFUNDED
        assert after[lines[0].id] == after[lines[2].id] == OrderStatus.PAID
        remote = await mp.control.payment(int(payment.provider_payment_id))
        assert remote["transaction_amount_refunded"] * 100 == lines[1].total_cents

        resp = await seller.post(f"/orders/{lines[0].id}/refund-cart")
        assert resp.status_code == 302
        statuses = [o.status for o in await Order.filter(cart_id=cart.id).order_by("id")]
        assert statuses == [OrderStatus.REFUNDED] * 3
        remote = await mp.control.payment(int(payment.provider_payment_id))
        assert remote["status"] == "refunded"


async def test_another_store_sees_no_cart_and_cannot_refund_it_and_csrf_is_required(
    db, redis_url, tmp_path
):
    async with _portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        cart, lines, payment = await _paid_cart(app, mp, seller.tenant)
        intruder = await make_seller(app, "Outra")
        assert (await intruder.text(f"/orders/{lines[0].id}"))[0] == 404
        resp = await intruder.post(f"/orders/{lines[0].id}/refund-cart")
        assert resp.status_code == 404
        _, listing = await intruder.text("/orders")
        assert f"#{cart.id}</span>" not in listing
        # the owner without the CSRF token: refused, nothing refunded
        forged = await seller.client.post(
            f"/orders/{lines[0].id}/refund-cart", form=MultiDict([("x", "1")])
        )
        assert forged.status_code in (400, 403)
        assert {o.status for o in await Order.filter(cart_id=cart.id)} == {OrderStatus.PAID}
        remote = await mp.control.payment(int(payment.provider_payment_id))
        assert remote["status"] == "approved"

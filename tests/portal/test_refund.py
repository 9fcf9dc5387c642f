"""The seller refunds a delivered order from the portal: the PIX is refunded at Mercado Pago,
the order turns `refunded` and the balance goes back to zero."""

from shop import ledger
from shop.models import Order
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from tests.helpers.portal import make_seller, portal_settings
from tests.shop.helpers import MP_FAST, make_order, make_store
from web.common import payment_services


async def paid_order(app, mp):
    """A seller with an R$ 25,00 order paid by PIX (synced)."""
    seller = await make_seller(app)
    store = await make_store(price_cents=2500, tenant=seller.tenant)
    order = await make_order(store)
    svc = payment_services(app)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "test")
    return seller, order, svc, payment


async def test_seller_refunds_a_paid_order_from_the_portal(db, redis_url, tmp_path):
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
            seller, order, svc, payment = await paid_order(app, mp)
            assert (await ledger.balance(seller.tenant.id)).total_cents > 0

            resp = await seller.post(f"/orders/{order.id}/refund")
            assert resp.status_code == 302
            assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
            assert (await ledger.balance(seller.tenant.id)).total_cents == 0
            remote = await mp.control.payment(int(payment.provider_payment_id))
            assert remote["status"] == "refunded"
            _, html = await seller.text(f"/orders/{order.id}")
            assert "Reembolsado" in html or "reembolsado" in html


async def test_after_a_partial_refund_the_portal_offers_to_refund_the_rest(db, redis_url, tmp_path):
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
            seller, order, svc, payment = await paid_order(app, mp)
            await svc.gateway.refund(payment.provider_payment_id, "part-1", amount_cents=1000)
            await sync_payment(svc, str(payment.id), "test")
            _, html = await seller.text(f"/orders/{order.id}")
            assert "R$ 15,00" in html and "(-R$ 10,00)" in html  # confirm text: the rest

            resp = await seller.post(f"/orders/{order.id}/refund")
            assert resp.status_code == 302
            assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
            assert (await ledger.balance(seller.tenant.id)).total_cents == 0
            remote = await mp.control.payment(int(payment.provider_payment_id))
            assert remote["status"] == "refunded" and remote["transaction_amount_refunded"] == 25

"""Orders API notifications (`type=order`) on a real portal, fed by the Mercado Pago stand-in:
MERCADOPAGO_API=orders, so the portal's own gateway is the one `gateway_from_settings` builds."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from core import redis as core_redis
from ops.process_tools import free_port
from sandbox.mercadopago.testing import mp_harness
from shop import ledger
from shop.models import Order, Payment, WebhookEvent
from shop.payments.gateways import gateway_from_settings
from shop.payments.mp_ids import ORDERS, api_of
from shop.payments.refunds import refund_order
from shop.payments.service import PaymentServices, create_pix_payment
from shop.states import OrderStatus, PaymentStatus
from tests.shop.helpers import (
    MP_FAST,
    eventually,
    make_order,
    make_settings,
    make_store,
    serve_quart,
)
from web.portal import create_app


@pytest.fixture
async def env(db, redis_url, tmp_path):
    port = free_port()
    async with mp_harness(MP_FAST) as mp:
        base = make_settings(tmp_path, db, redis_url, mp_url=mp.url, portal_port=port)
        settings = dataclasses.replace(base, mercadopago_api=ORDERS)
        # the Orders API notifies the URL of the panel's "Order (Mercado Pago)" topic
        mp.state.config.default_notification_url = f"http://127.0.0.1:{port}/webhooks/mercadopago"
        async with serve_quart(create_app(settings), port):
            gateway = gateway_from_settings(settings, backoff_base=0.01)
            redis = core_redis.connect(redis_url)
            try:
                yield SimpleNamespace(
                    mp=mp, svc=PaymentServices.from_settings(settings, gateway, redis)
                )
            finally:
                await gateway.aclose()
                await redis.aclose()


async def settled(count: int) -> list[WebhookEvent]:
    async def check():
        events = await WebhookEvent.all().order_by("id")
        done = len(events) >= count and all(e.outcome != "accepted" for e in events)
        return events if done else None

    return await eventually(check, what=f"{count} settled webhook events")


async def test_order_notifications_pay_then_refund_through_the_portal(env):
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(env.svc, order.id, "buyer:555")
    assert api_of(payment.provider_payment_id) == ORDERS
    await settled(1)  # order.action_required: fetched, nothing to change
    await env.mp.control.set_faults(duplicate=3)  # each notification arrives three times
    await env.mp.control.approve(payment.provider_payment_id)

    async def paid():
        return (await Order.get(id=order.id)).status == OrderStatus.PAID

    await eventually(paid, what="order paid")
    await settled(2)
    assert (await ledger.balance(store["tenant"].id)).total_cents == 1990 - 100
    await refund_order(env.svc, order.id, "seller:1", 990)  # same order id, a new request id
    events = await settled(3)
    assert [e.topic for e in events] == ["order"] * 3
    assert {e.data_id for e in events} == {payment.provider_payment_id}
    assert len({e.dedupe_key for e in events}) == 3 and all(e.signature_valid for e in events)
    assert [e.outcome for e in events] == ["processed"] * 3
    local = await Payment.get(id=payment.id)
    assert local.refunded_cents == 990 and local.status == PaymentStatus.APPROVED
    log = await env.mp.control.webhooks()
    assert [e["status"] for e in log] == [200] * 7  # 1 + 3 copies of each of 2 events
    assert len({e["headers"]["x-request-id"] for e in log}) == 3
    assert await WebhookEvent.all().count() == 3  # the copies were answered, not stored

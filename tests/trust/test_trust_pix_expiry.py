"""Issue 13 §8: a PIX charge asks Mercado Pago for at least 30 minutes by Mercado Pago's clock.

Mercado Pago refuses a `date_of_expiration` under 30 minutes from when it reads the request;
the stand-in now does the same, with no slack.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.mercadopago.testing import expiry_in, mp_harness
from sandbox.mercadopago.util import parse_mp_date
from shop.models import Order
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices, create_pix_payment
from shop.states import OrderStatus, PaymentStatus
from tests.shop.helpers import MP_FAST, make_order, make_settings, make_store


@pytest.fixture
async def mp():
    async with mp_harness(MP_FAST) as harness:
        yield harness


@pytest.fixture
async def svc(mp, db, redis_url, tmp_path):
    settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url)
    gateway = MercadoPagoGateway.from_settings(settings, backoff_base=0.01)
    yield PaymentServices.from_settings(settings, gateway, None)
    await gateway.aclose()


async def test_stand_in_refuses_an_expiration_a_moment_short_of_30_minutes_like_mercadopago(mp):
    short = await mp.create(key="short", date_of_expiration=expiry_in(timedelta(minutes=30)))
    assert short.status_code == 400
    assert short.json()["cause"][0]["code"] == 4027
    ok = await mp.create(key="ok", date_of_expiration=expiry_in(timedelta(minutes=30, seconds=5)))
    assert ok.status_code == 201


async def test_pix_charge_is_created_when_mercadopago_clock_runs_ahead_of_ours(mp, svc):
    await mp.control.advance_clock(5)  # MP's clock a few seconds ahead (and a slow request)
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    assert payment.provider_payment_id and payment.status == PaymentStatus.PENDING
    assert (await Order.get(id=order.id)).status == OrderStatus.PENDING  # not cancelled
    remote = await mp.control.payment(int(payment.provider_payment_id))
    created = parse_mp_date(remote["date_created"])
    assert parse_mp_date(remote["date_of_expiration"]) - created >= timedelta(minutes=30)

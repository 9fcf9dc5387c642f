"""The Orders API gateway (`/v1/orders`) against the Mercado Pago stand-in, over real sockets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.mercadopago.testing import mp_harness
from shop.errors import PaymentNotFound, PaymentProviderError, PaymentProviderUnavailable
from shop.payments.gateway import PixCharge
from shop.payments.gateways import MercadoPagoApis
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.mp_ids import ORDERS, PAYMENTS, api_of
from shop.payments.orders_gateway import MercadoPagoOrdersGateway, iso_duration, order_status
from tests.shop.helpers import MP_FAST

FAST = {"backoff_base": 0.01, "max_backoff": 0.05}


@pytest.fixture
async def mp():
    async with mp_harness(MP_FAST) as harness:
        yield harness


@pytest.fixture
async def orders(mp):
    gateway = MercadoPagoOrdersGateway(mp.url, "TEST-token", mp.notification_url, **FAST)
    yield gateway
    await gateway.aclose()


def charge(amount_cents: int = 1990, **kw) -> PixCharge:
    fields = {
        "payment_id": str(uuid.uuid4()),
        "amount_cents": amount_cents,
        "description": "Pedido #1",
        "payer_email": "buyer555@example.com",
        "expires_at": datetime.now(UTC) + timedelta(minutes=31),
    }
    return PixCharge(**{**fields, **kw})


def test_status_table_maps_the_documented_pairs():
    assert order_status("action_required", "waiting_transfer") == "pending"
    assert order_status("processed", "accredited") == "approved"
    assert order_status("processed", "partially_refunded") == "approved"
    assert order_status("processed", "refunded") == "refunded"
    assert order_status("refunded", "refunded") == "refunded"
    assert order_status("expired", "expired") == "cancelled"
    assert order_status("canceled", "canceled") == "cancelled"
    assert order_status("failed", "rejected_by_issuer") == "rejected"
    assert order_status("something_new", "x") == ""  # reported as unhandled, never guessed
    assert iso_duration(31 * 60 + 59) == "PT31M" and iso_duration(5400) == "PT1H30M"


async def test_create_sends_a_documented_pix_order_and_reads_it_back(mp, orders):
    c = charge(marketplace_fee_cents=100)
    created = await orders.create_pix(c)
    assert created.id.startswith("ORD") and api_of(created.id) == ORDERS
    assert (created.status, created.status_detail) == ("pending", "waiting_transfer")
    assert created.amount_cents == 1990 and created.external_reference == c.payment_id
    assert created.qr_code.startswith("000201") and created.qr_code_base64
    assert created.expires_at is not None and created.currency == "BRL"
    assert "qr_code_base64" not in str(created.raw)  # the stored snapshot stays small
    order = mp.state.orders[created.id]
    assert order.expiration_time == "PT30M" and order.marketplace_fee_cents == 100  # floored
    again = await orders.get_payment(created.id)
    assert (again.id, again.status, again.amount_cents) == (created.id, "pending", 1990)
    with pytest.raises(PaymentNotFound):
        await orders.get_payment("ORD" + "0" * 26)


async def test_retried_create_with_the_same_id_returns_the_same_order(mp, orders):
    c = charge()
    first = await orders.create_pix(c)
    later = charge(payment_id=c.payment_id, expires_at=c.expires_at - timedelta(minutes=5))
    assert (await orders.create_pix(c)).id == first.id  # same body: the stored answer
    assert (await orders.create_pix(later)).id == first.id  # another body: found by reference
    assert len(mp.state.orders) == 1


async def test_approve_then_partial_and_total_refund(mp, orders):
    created = await orders.create_pix(charge())
    await mp.control.approve(created.id)
    paid = await orders.get_payment(created.id)
    assert (paid.status, paid.status_detail) == ("approved", "accredited")
    await orders.refund(created.id, "refund-1", 500)
    await orders.refund(created.id, "refund-1", 500)  # a retried request refunds once
    partial = await orders.get_payment(created.id)
    assert (partial.status, partial.status_detail, partial.refunded_cents) == (
        "approved",
        "partially_refunded",
        500,
    )
    await orders.refund(created.id, "refund-2")
    full = await orders.get_payment(created.id)
    assert (full.status, full.refunded_cents) == ("refunded", 1990)
    assert mp.state.payments[mp.state.orders[created.id].payment_id].refunded_cents == 1990


async def test_cancel_a_waiting_order_and_not_a_paid_one(mp, orders):
    created = await orders.create_pix(charge())
    cancelled = await orders.cancel(created.id)
    assert (cancelled.status, cancelled.status_detail) == ("cancelled", "canceled")
    paid = await orders.create_pix(charge())
    await mp.control.approve(paid.id)
    with pytest.raises(PaymentProviderError) as err:
        await orders.cancel(paid.id)
    assert err.value.status == 409 and err.value.error == "order_cannot_be_canceled"


async def test_unpaid_order_expires(mp, orders):
    created = await orders.create_pix(charge())
    await mp.control.advance_clock(32 * 60)
    expired = await orders.get_payment(created.id)
    assert (expired.status, expired.status_detail) == ("cancelled", "expired")


async def test_429_is_retried_after_its_retry_after(mp, orders):
    await mp.control.set_faults(api_error_status=429, api_error_count=1, retry_after=0)
    created = await orders.create_pix(charge())
    assert created.status == "pending" and len(mp.state.orders) == 1
    assert (await mp.control.requests())["POST /v1/orders"] == 2


async def test_lost_answer_is_found_by_reference(mp):
    once = MercadoPagoOrdersGateway(mp.url, "T", mp.notification_url, max_attempts=1)
    c = charge()
    await mp.control.set_faults(lose_answers=1)
    try:
        with pytest.raises(PaymentProviderUnavailable):
            await once.create_pix(c)
        found = await once.find_by_reference(c.payment_id)
    finally:
        await once.aclose()
    assert [o.external_reference for o in found] == [c.payment_id]
    assert len(mp.state.orders) == 1  # the order was made; its answer was lost


async def test_sandbox_refuses_what_mercado_pago_refuses(mp):
    headers = {"X-Idempotency-Key": "k1"}
    body = {
        "type": "online",
        "processing_mode": "automatic",
        "external_reference": "ref-1",
        "total_amount": "10.00",
        "payer": {"email": "a@example.com"},
        "transactions": {
            "payments": [
                {
                    "amount": "10.00",
                    "payment_method": {"id": "pix", "type": "bank_transfer"},
                    "expiration_time": "PT10M",
                }
            ]
        },
    }
    r = await mp.api.post("/v1/orders", json=body)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "empty_required_header"
    r = await mp.api.post("/v1/orders", json=body, headers=headers)
    assert r.status_code == 400 and "30 minutes" in r.json()["errors"][0]["message"]
    r = await mp.api.post("/v1/orders", json={**body, "total_amount": "9.00"}, headers=headers)
    assert r.json()["errors"][0]["code"] == "order_transactions_total_amount_mismatch"
    r = await mp.api.get("/v1/orders", params={"external_reference": "ref-1"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "missing_required_params"
    assert mp.state.orders == {}


async def test_a_payment_stays_on_the_api_that_created_it(mp):
    def build(name):
        cls = MercadoPagoOrdersGateway if name == ORDERS else MercadoPagoGateway
        return cls(mp.url, "TEST-token", mp.notification_url, **FAST)

    before = MercadoPagoApis(build, PAYMENTS)
    legacy = await before.create_pix(charge())
    await before.aclose()
    after = MercadoPagoApis(build, ORDERS)  # the setting changed
    try:
        new = await after.create_pix(charge())
        assert api_of(legacy.id) == PAYMENTS and api_of(new.id) == ORDERS
        await mp.control.approve(int(legacy.id))
        assert (await after.get_payment(legacy.id)).status == "approved"
        await after.refund(legacy.id, "r-legacy")
        assert (await after.get_payment(legacy.id)).status == "refunded"
        found = await after.find_by_reference(str(legacy.external_reference))
        assert [p.id for p in found] == [legacy.id]  # searched on the other API too
    finally:
        await after.aclose()
    calls = await mp.control.requests()
    assert calls["POST /v1/payments/{id}/refunds"] == 1
    assert "POST /v1/orders/{id}/refund" not in calls


async def test_order_notifications_are_deduplicated_by_request_id(db):
    import json
    import time

    from shop.models import WebhookEvent
    from shop.payments.signature import sign
    from shop.payments.webhook_intake import ACCEPTED, DUPLICATE, receive_mercadopago
    from tests.shop.helpers import SECRET

    oid = "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"

    async def send(request_id: str, data_id: str = oid) -> str:
        ts = str(int(time.time() * 1000))
        headers = {
            "x-request-id": request_id,
            "x-signature": f"ts={ts},v1={sign(SECRET, data_id, request_id, ts)}",
        }
        body = {"id": 7, "type": "order", "action": "order.processed", "data": {"id": data_id}}
        query = {"data.id": data_id, "type": "order"}
        receipt = await receive_mercadopago(SECRET, query, headers, json.dumps(body).encode())
        return receipt.outcome

    assert await send("req-paid") == ACCEPTED
    assert await send("req-refund") == ACCEPTED  # same data.id, body id and action: a new event
    assert await send("req-refund") == DUPLICATE  # Mercado Pago's retry of that event
    assert await send("req-x", data_id="ord;drop") == "ignored"  # not an order id: no fetch
    keys = sorted(e.dedupe_key for e in await WebhookEvent.filter(outcome=ACCEPTED))
    assert keys == ["mpo:req-paid", "mpo:req-refund"]


@pytest.mark.parametrize(
    "value,expected", [(None, PAYMENTS), ("orders", ORDERS), (" Payments ", PAYMENTS)]
)
async def test_mercadopago_api_setting_picks_new_charges_api(tmp_path, value, expected):
    from core.settings import load_settings
    from shop.payments.gateways import gateway_from_settings

    env = {"DATA_DIR": str(tmp_path / "d"), "LOG_DIR": str(tmp_path / "l")}
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "vitrine.sqlite3").touch()  # an existing install: unset stays payments
    if value is not None:
        env["MERCADOPAGO_API"] = value
    settings = load_settings(env, env_file=None)
    gateway = gateway_from_settings(settings, access_token="APP_USR-seller-1")
    try:
        assert settings.mercadopago_api == gateway.create_with == expected
        orders = gateway.api(ORDERS)
        assert isinstance(orders, MercadoPagoOrdersGateway)
        assert orders._http.headers["Authorization"] == "Bearer APP_USR-seller-1"
    finally:
        await gateway.aclose()


def test_an_unknown_mercadopago_api_stops_the_process(tmp_path):
    from core.errors import ConfigError
    from core.settings import load_settings

    env = {"DATA_DIR": str(tmp_path), "LOG_DIR": str(tmp_path), "MERCADOPAGO_API": "v2"}
    with pytest.raises(ConfigError, match="MERCADOPAGO_API"):
        load_settings(env, env_file=None)

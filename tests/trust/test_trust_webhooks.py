"""Issue 13 §5: the Mercado Pago webhook endpoint cannot be flooded.

Forged, unsigned, unknown-id and replayed deliveries are answered without a row in
`webhook_events` and without a request to Mercado Pago, while real signed webhooks keep paying
orders; bad signatures are counted and alerted on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import pytest

from core import redis as core_redis
from fleet import keys
from fleet.models import Alert
from ops.process_tools import free_port
from sandbox.mercadopago.testing import mp_harness
from shop.models import Order, WebhookEvent
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices, create_pix_payment
from shop.payments.signature import sign
from shop.states import OrderStatus
from tests.shop.helpers import (
    ADMIN_TOKEN,
    MP_FAST,
    SECRET,
    eventually,
    make_order,
    make_settings,
    make_store,
    serve_quart,
)
from web.admin import create_app as create_admin_app
from web.portal import create_app

FETCH = "GET /v1/payments/{id}"
WEBHOOK = "/webhooks/mercadopago"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@asynccontextmanager
async def portal_env(db, redis_url, tmp_path, **overrides):
    """A served portal (hypercorn on a loopback port) and the Mercado Pago stand-in."""
    port = free_port()
    async with mp_harness(MP_FAST) as mp:
        settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url, portal_port=port)
        settings = dataclasses.replace(settings, **overrides)
        app = create_app(settings)
        async with serve_quart(app, port) as base:
            gateway = MercadoPagoGateway.from_settings(settings, backoff_base=0.01)
            redis = core_redis.connect(redis_url)
            try:
                yield SimpleNamespace(
                    mp=mp,
                    redis=redis,
                    app=app,
                    settings=settings,
                    url=f"{base}/webhooks/mercadopago",
                    svc=PaymentServices.from_settings(settings, gateway, redis),
                )
            finally:
                await gateway.aclose()
                await redis.aclose()


@pytest.fixture
async def env(db, redis_url, tmp_path):
    async with portal_env(db, redis_url, tmp_path) as e:
        yield e


async def fetches(env) -> int:
    return (await env.mp.control.requests()).get(FETCH, 0)


async def pending_order(env):
    """A store, a pending order and its PIX charge; waits until payment.created is handled."""
    store = await make_store(price_cents=1990)
    order = await make_order(store)
    payment = await create_pix_payment(env.svc, order.id, "buyer:555")
    await eventually(
        lambda: WebhookEvent.filter(outcome="processed").exists(), what="payment.created processed"
    )
    return store, order, payment


def signed(
    data_id: str, request_id: str | None = None, secret: str = SECRET, ts: int | None = None
) -> dict[str, str]:
    ts_s = str(ts if ts is not None else int(time.time() * 1000))
    rid = request_id or str(uuid.uuid4())
    return {
        "x-request-id": rid,
        "content-type": "application/json",
        "x-signature": f"ts={ts_s},v1={sign(secret, data_id, rid, ts_s)}",
    }


def body_for(data_id: str, notification_id: int) -> bytes:
    return json.dumps(
        {
            "action": "payment.updated",
            "api_version": "v1",
            "data": {"id": data_id},
            "id": notification_id,
            "live_mode": False,
            "type": "payment",
            "user_id": 1,
        }
    ).encode()


def flood(count: int, replay: WebhookEvent) -> list[dict]:
    """`count` requests (keyword arguments of the Quart test client's `post`): bad signatures,
    missing signatures, legacy IPNs for ids we never created, and replays of a real (captured)
    signed notification."""
    requests = []
    for i in range(count):
        unknown = str(9_000_000_000 + i)
        kind = i % 4
        if kind == 0:  # signed with the wrong secret (or stale)
            ts = int(time.time() * 1000) - (600_000 if i % 8 == 0 else 0)
            requests.append(
                {
                    "query_string": {"data.id": unknown, "type": "payment"},
                    "data": body_for(unknown, i),
                    "headers": signed(unknown, secret="not-the-secret-0123", ts=ts),
                }
            )
        elif kind == 1:  # no signature at all
            requests.append(
                {
                    "query_string": {"data.id": unknown, "type": "payment"},
                    "data": body_for(unknown, i),
                    "headers": {"content-type": "application/json"},
                }
            )
        elif kind == 2:  # legacy IPN, unsigned, for a payment we never created
            requests.append({"query_string": {"topic": "payment", "id": unknown}, "data": b""})
        else:  # the real payment.created notification, captured and sent again
            requests.append(
                {
                    "query_string": {"data.id": replay.data_id, "type": "payment"},
                    "data": json.dumps(replay.body).encode(),
                    "headers": signed(replay.data_id, replay.request_id),
                }
            )
    return requests


async def test_ten_thousand_forged_requests_store_nothing_fetch_nothing_and_a_real_webhook_pays(
    env,
):  # noqa: E501
    store, order, payment = await pending_order(env)
    created = await WebhookEvent.get(outcome="processed")
    rows_before, fetches_before = await WebhookEvent.all().count(), await fetches(env)
    requests = flood(10_000, created)
    # The flood goes through the served app's ASGI entry in-process (the whole portal stack
    # without HTTP parsing, so 10,000 requests take seconds); the real notification below
    # comes from the stand-in over HTTP.
    client = env.app.test_client()
    statuses: list[int] = []

    async def send(batch: list[dict], workers: int = 16) -> None:
        async def work(items: list[dict]) -> None:
            for kwargs in items:
                statuses.append((await client.post(WEBHOOK, **kwargs)).status_code)

        await asyncio.gather(*(work(batch[i::workers]) for i in range(workers)))

    await send(requests[:5_000])
    # Mercado Pago's real, signed notification arrives in the middle of the flood.
    await env.mp.control.approve(int(payment.provider_payment_id))
    await send(requests[5_000:])
    assert len(statuses) == 10_000 and set(statuses) <= {200, 401, 429}
    await eventually(lambda: _order_is(order.id, OrderStatus.PAID), what="order paid")
    stream = await env.redis.xrange(keys.delivery_stream(store["instance"].id))
    assert [fields for _, fields in stream] == [{"order_id": str(order.id)}]
    # One row and one fetch for the real approval; none for the 10,000 others.
    await eventually(lambda: _settled(rows_before + 1), what="approval processed")
    assert await WebhookEvent.all().count() == rows_before + 1
    assert await fetches(env) == fetches_before + 1


async def _order_is(order_id: int, status: str) -> bool:
    return (await Order.get(id=order_id)).status == status


async def _settled(count: int) -> bool:
    events = await WebhookEvent.all()
    return len(events) >= count and all(e.outcome != "accepted" for e in events)


async def test_legacy_ipn_for_unknown_id_gets_the_same_answer_as_a_known_one_and_is_not_fetched(
    env,
):
    _, _, payment = await pending_order(env)
    rows, before = await WebhookEvent.all().count(), await fetches(env)
    async with httpx.AsyncClient() as client:
        unknown = await client.post(env.url, params={"topic": "payment", "id": "777000111"})
        known = await client.post(
            env.url, params={"topic": "payment", "id": payment.provider_payment_id}
        )
    assert (
        (unknown.status_code, unknown.json())
        == (known.status_code, known.json())
        == (200, {"status": "accepted"})
    )
    await eventually(lambda: _settled(rows + 1), what="known IPN processed")
    assert await WebhookEvent.filter(data_id="777000111").count() == 0
    assert await fetches(env) == before + 1  # the known id only


async def test_legacy_ipns_for_one_payment_are_fetched_once_per_window(env):
    _, _, payment = await pending_order(env)
    rows, before = await WebhookEvent.all().count(), await fetches(env)
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(
                client.post(env.url, params={"topic": "payment", "id": payment.provider_payment_id})
                for _ in range(50)
            )
        )
    assert {a.status_code for a in answers} == {200}
    await eventually(lambda: _settled(rows + 1), what="IPN processed")
    await asyncio.sleep(0.3)
    assert await WebhookEvent.all().count() == rows + 1
    assert await fetches(env) == before + 1


async def test_unsigned_requests_over_the_per_client_limit_get_429_but_signed_ones_pass(
    db, redis_url, tmp_path
):
    async with portal_env(db, redis_url, tmp_path, webhook_rate_limit_per_minute=5) as env:
        _, order, payment = await pending_order(env)
        pid = payment.provider_payment_id
        async with httpx.AsyncClient() as client:
            bare = [
                await client.post(
                    env.url, params={"data.id": "1", "type": "payment"}, content=body_for("1", 1)
                )
                for _ in range(8)
            ]
            assert [r.status_code for r in bare] == [401] * 5 + [429] * 3
            await env.mp.control.set_faults(drop=True)  # we send the approval ourselves
            await env.mp.control.approve(int(pid))
            real = await client.post(
                env.url,
                params={"data.id": pid, "type": "payment"},
                content=body_for(pid, 4242),
                headers=signed(pid),
            )
        assert real.status_code == 200 and real.json() == {"status": "accepted"}
        await eventually(lambda: _order_is(order.id, OrderStatus.PAID), what="order paid")


async def test_bad_signatures_are_counted_and_one_alert_is_raised_above_the_threshold(
    db, redis_url, tmp_path
):
    async with portal_env(db, redis_url, tmp_path, webhook_forgery_alert_per_minute=10) as env:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        env.url,
                        params={"data.id": str(n), "type": "payment"},
                        content=body_for(str(n), n),
                        headers=signed(str(n), secret="x" * 20),
                    )
                    for n in range(40)
                )
            )
        assert {a.status_code for a in answers} == {401}
        assert await WebhookEvent.all().count() == 0
        [alert] = await Alert.filter(kind="webhook_forgery")
        assert alert.tenant_id is None and alert.details["threshold_per_minute"] == 10
        admin = create_admin_app(env.settings)
        async with admin.test_app():
            scrape = await admin.test_client().get("/metrics", headers=ADMIN_AUTH)
        text = await scrape.get_data(as_text=True)
        assert scrape.status_code == 200
        assert 'vitrine_webhook_rejected_total{reason="mismatch"} 40.0' in text


async def test_redis_outage_never_turns_an_unsigned_webhook_into_an_error(db):
    """Counting, the rate limit and IPN de-duplication live in Redis; without it the endpoint
    still answers (and still stores nothing for what is not signed)."""
    from shop.payments.webhook_guard import WebhookGuard
    from shop.payments.webhook_intake import receive_mercadopago

    async def broken_limiter() -> bool:
        raise ConnectionError("Redis is down")

    dead = core_redis.connect(f"redis://127.0.0.1:{free_port()}/0")
    guard = WebhookGuard(dead, 10, broken_limiter)
    try:
        bare = await receive_mercadopago(
            SECRET, {"data.id": "5", "type": "payment"}, {}, body_for("5", 5), guard=guard
        )
        ipn = await receive_mercadopago(
            SECRET, {"topic": "payment", "id": "5"}, {}, b"", guard=guard
        )
    finally:
        await dead.aclose()
    assert (bare.status, ipn.status, ipn.outcome) == (401, 200, "accepted")
    assert await WebhookEvent.all().count() == 0

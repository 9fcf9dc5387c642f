"""POST /webhooks/mercadopago on a real hypercorn portal, fed by the Mercado Pago stand-in."""

import fcntl
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from core import redis as core_redis
from core.models import AuditLog
from fleet import keys
from ops.process_tools import free_port, wait_port
from sandbox.mercadopago.client import MercadoPagoSandboxClient
from sandbox.mercadopago.testing import mp_harness
from shop import ledger
from shop.models import LedgerEntry, Order, WebhookEvent
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices, create_pix_payment
from shop.payments.signature import sign
from shop.payments.webhook_guard import rejected_counts
from shop.states import OrderStatus
from tests.shop.helpers import (
    MP_FAST,
    SECRET,
    eventually,
    make_order,
    make_settings,
    make_store,
    serve_quart,
)
from web.portal import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def env(db, redis_url, tmp_path):
    port = free_port()
    async with mp_harness(MP_FAST) as mp:
        settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url, portal_port=port)
        app = create_app(settings)
        async with serve_quart(app, port) as base:
            gateway = MercadoPagoGateway.from_settings(settings, backoff_base=0.01)
            redis = core_redis.connect(redis_url)
            svc = PaymentServices.from_settings(settings, gateway, redis)
            try:
                yield SimpleNamespace(
                    mp=mp, base=base, svc=svc, redis=redis, url=f"{base}/webhooks/mercadopago"
                )
            finally:
                await gateway.aclose()
                await redis.aclose()


async def settled(count: int) -> list[WebhookEvent]:
    """Wait until `count` deliveries were recorded and none is still being processed."""

    async def check():
        events = await WebhookEvent.all().order_by("id")
        return (
            events
            if len(events) >= count and all(e.outcome != "accepted" for e in events)
            else None
        )

    return await eventually(check, what=f"{count} settled webhook events")


async def order_status(order_id: int) -> str:
    return (await Order.get(id=order_id)).status


async def new_payment(env, quantity=1):
    store = await make_store(price_cents=1990)
    order = await make_order(store, quantity=quantity)
    payment = await create_pix_payment(env.svc, order.id, "buyer:555")
    return store, order, payment


def signed_headers(data_id: str, ts_ms: int | None = None, secret: str = SECRET) -> dict:
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    rid = str(uuid.uuid4())
    return {
        "x-request-id": rid,
        "x-signature": f"ts={ts},v1={sign(secret, data_id, rid, ts)}",
        "content-type": "application/json",
    }


def body_for(data_id: str, notification_id: int = 1, action: str = "payment.updated") -> dict:
    return {
        "action": action,
        "api_version": "v1",
        "data": {"id": data_id},
        "id": notification_id,
        "live_mode": False,
        "type": "payment",
        "user_id": 1,
    }


async def test_pix_approved_webhook_pays_order_credits_ledger_and_enqueues_delivery(env):
    store, order, payment = await new_payment(env, quantity=2)
    await settled(1)  # payment.created: fetched, nothing to change
    await env.mp.control.approve(int(payment.provider_payment_id))
    await eventually(lambda: _is(order.id, OrderStatus.PAID), what="order paid")
    events = await settled(2)
    assert [e.outcome for e in events] == ["processed", "processed"]
    assert all(e.signature_valid for e in events)
    total = 2 * 1990
    fee = 199  # 5 % of R$ 39,80
    bal = await ledger.balance(store["tenant"].id)
    assert bal.total_cents == total - fee and bal.on_hold_cents == total - fee
    assert await ledger.account_total(ledger.FEES) == fee
    stream = await env.redis.xrange(keys.delivery_stream(store["instance"].id))
    assert [fields for _, fields in stream] == [{"order_id": str(order.id)}]


async def _is(order_id, status):
    return await order_status(order_id) == status


async def test_same_webhook_five_times_and_out_of_order_changes_nothing_after_the_first(env):
    await env.mp.control.set_faults(duplicate=5, out_of_order=2)
    store, order, payment = await new_payment(env)  # payment.created is held
    pid = payment.provider_payment_id
    await env.mp.control.approve(int(pid))  # releases both, newest (approved) first, 5x each
    await env.mp.control.wait_webhooks(
        lambda entries: sum(e.get("status") == 200 for e in entries) >= 10
    )
    events = await settled(2)
    # The 8 repeats are answered and counted, not stored (a replay costs no row).
    assert [e.outcome for e in events] == ["processed"] * 2
    assert (await rejected_counts(env.redis))["duplicate"] == 8
    assert events[0].action == "payment.updated"  # out of order indeed
    assert await order_status(order.id) == OrderStatus.PAID
    assert await LedgerEntry.all().count() == 3
    assert await AuditLog.filter(action="order.paid").count() == 1
    assert await env.redis.xlen(keys.delivery_stream(store["instance"].id)) == 1
    assert (await env.mp.control.requests())["GET /v1/payments/{id}"] == 2
    async with httpx.AsyncClient() as client:  # a replay, freshly signed, is a duplicate too
        replay = await client.post(
            f"{env.url}?data.id={pid}&type=payment",
            json=body_for(pid, events[0].body["id"]),
            headers=signed_headers(pid),
        )
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert await LedgerEntry.all().count() == 3 and await WebhookEvent.all().count() == 2


async def test_forged_signature_is_rejected_counted_not_recorded_and_changes_nothing(env):
    store, order, payment = await new_payment(env)
    await settled(1)
    await env.mp.control.set_faults(bad_signature=True)
    await env.mp.control.approve(int(payment.provider_payment_id))
    log = await env.mp.control.wait_webhooks(
        lambda entries: sum(e.get("status") == 401 for e in entries) >= 4
    )
    assert all(e["status"] == 401 for e in log[1:])
    assert await WebhookEvent.all().count() == 1  # payment.created only: forgeries cost no row
    assert (await rejected_counts(env.redis))["mismatch"] == 4
    assert await order_status(order.id) == OrderStatus.PENDING
    assert await LedgerEntry.all().count() == 0
    assert (await env.mp.control.requests()).get("GET /v1/payments/{id}") == 1  # created only


async def test_stale_or_missing_signature_gets_401_and_is_counted_not_recorded(env):
    store, order, payment = await new_payment(env)
    await settled(1)
    await env.mp.control.approve(int(payment.provider_payment_id))
    await settled(2)
    pid = payment.provider_payment_id
    old = int((time.time() - 600) * 1000)
    async with httpx.AsyncClient() as client:
        stale = await client.post(
            f"{env.url}?data.id={pid}&type=payment",
            json=body_for(pid, 77),
            headers=signed_headers(pid, old),
        )
        bare = await client.post(f"{env.url}?data.id={pid}&type=payment", json=body_for(pid, 78))
        other_id = await client.post(
            f"{env.url}?data.id=1{pid}&type=payment",
            json=body_for(pid, 79),
            headers=signed_headers(pid),
        )
    assert [r.status_code for r in (stale, bare, other_id)] == [401, 401, 401]
    assert await WebhookEvent.filter(notification_id__in=["77", "78", "79"]).count() == 0
    counts = await rejected_counts(env.redis)
    assert (counts["stale"], counts["missing"], counts["mismatch"]) == (1, 1, 1)


async def test_valid_webhook_for_unknown_payment_is_recorded_and_ignored(env):
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{env.url}?data.id=424242&type=payment",
            json=body_for("424242", 5),
            headers=signed_headers("424242"),
        )
    assert response.status_code == 200
    [event] = await settled(1)
    assert event.outcome == "unknown_payment" and event.signature_valid


async def test_legacy_ipn_is_accepted_by_fetching_the_payment(env):
    await env.mp.control.set_faults(drop=True)
    store, order, payment = await new_payment(env)
    await env.mp.control.approve(int(payment.provider_payment_id))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{env.url}?topic=payment&id={payment.provider_payment_id}", content=b""
        )
    assert response.status_code == 200
    [event] = await settled(1)
    assert event.outcome == "processed" and event.topic == "payment"
    assert await order_status(order.id) == OrderStatus.PAID


@pytest.fixture
def stand_in_with_unread_stderr():
    """`python -m sandbox.mercadopago` whose stderr is a pipe nobody reads, as bench/webhooks.py
    kept it. The pipe is shrunk to one page, so a few dozen log lines fill it (not ~550)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.mercadopago",
            "--port",
            str(port),
            "--webhook-secret",
            SECRET,
            "--retry-delays",
            "0.05,0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()  # one stuck writing to its stderr would not act on SIGTERM
        proc.wait(10)
        os.close(read_end)


@pytest.mark.e2e
async def test_every_distinct_payment_gets_paid_when_the_stand_in_stderr_is_never_read(
    stand_in_with_unread_stderr, db, redis_url, tmp_path
):
    """bench/webhooks.py's stall: once the stand-in's stderr pipe was full, its event loop
    blocked writing a log line and every payment fetch timed out."""
    count = 30  # 4 requests each: create, fetch after payment.created, approve, fetch
    mp_url, portal_port = stand_in_with_unread_stderr, free_port()
    settings = make_settings(tmp_path, db, redis_url, mp_url=mp_url, portal_port=portal_port)
    # Short timeouts for the test's own calls: a stalled stand-in fails in seconds.
    gateway = MercadoPagoGateway.from_settings(settings, timeout=3.0, max_attempts=1)
    svc = PaymentServices.from_settings(settings, gateway, None)
    async with (
        serve_quart(create_app(settings), portal_port),
        MercadoPagoSandboxClient(mp_url, timeout=3.0) as control,
    ):
        try:
            store = await make_store(stock=count)
            orders = [await make_order(store) for _ in range(count)]
            payments = [await create_pix_payment(svc, o.id, "buyer:555") for o in orders]
            for payment in payments:  # each approval makes the stand-in notify the portal
                await control.approve(int(payment.provider_payment_id))
            events = await settled(2 * count)  # payment.created + payment.updated each
            assert [e.outcome for e in events] == ["processed"] * 2 * count
            assert await Order.filter(status=OrderStatus.PAID).count() == count
        finally:
            await gateway.aclose()

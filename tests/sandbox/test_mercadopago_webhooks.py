"""Webhooks of the Mercado Pago stand-in: signature, retries, faults, expiry."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta

import pytest

from sandbox.mercadopago import MercadoPagoConfig
from sandbox.mercadopago.testing import Received, expiry_in, mp_harness

SECRET = "test-webhook-secret"
FAST = MercadoPagoConfig(
    webhook_secret=SECRET, webhook_retry_delays=(0.05, 0.05, 0.05), sweep_interval=0.05
)


@pytest.fixture
async def mp():
    async with mp_harness(FAST) as harness:
        yield harness


def signature_ok(req: Received, secret: str = SECRET) -> bool:
    """Verify x-signature independently of the sandbox code (MP's documented recipe)."""
    parts = dict(item.split("=", 1) for item in req.headers["x-signature"].split(","))
    manifest = (
        f"id:{req.query['data.id'].lower()};"
        f"request-id:{req.headers['x-request-id']};ts:{parts['ts']};"
    )
    expected = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def created_payment(mp) -> int:
    """Create a payment and wait for its payment.created webhook."""
    pid = (await mp.create()).json()["id"]
    await mp.receiver.wait_for(1)
    return pid


async def test_approve_sends_signed_webhook_like_mp(mp):
    pid = await created_payment(mp)
    created = mp.receiver.received[0]
    assert created.json["action"] == "payment.created"
    await mp.control.approve(pid)
    req = (await mp.receiver.wait_for(2))[1]
    assert req.path == "/wh/mp"
    assert req.query == {"source_news": "webhooks", "data.id": str(pid), "type": "payment"}
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["x-retry"] == "0"
    assert signature_ok(req) and signature_ok(created)
    ts = int(dict(p.split("=") for p in req.headers["x-signature"].split(","))["ts"])
    assert len(str(ts)) == 13  # milliseconds
    body = req.json
    assert body["action"] == "payment.updated" and body["type"] == "payment"
    assert body["data"] == {"id": str(pid)} and body["api_version"] == "v1"
    assert body["live_mode"] is False and isinstance(body["user_id"], int)
    assert isinstance(body["id"], int) and body["id"] != created.json["id"]
    got = (await mp.api.get(f"/v1/payments/{pid}")).json()
    assert got["status"] == "approved" and got["date_approved"] is not None


async def test_duplicate_fault_delivers_n_copies(mp):
    pid = await created_payment(mp)
    await mp.control.set_faults(duplicate=3)
    await mp.control.approve(pid)
    copies = (await mp.receiver.wait_for(4))[1:]
    assert [c.json["action"] for c in copies] == ["payment.updated"] * 3
    assert len({c.json["id"] for c in copies}) == 1  # same notification id: dedupe on it
    assert len({c.headers["x-request-id"] for c in copies}) == 3
    assert all(signature_ok(c) for c in copies)


async def test_out_of_order_fault_delivers_newest_first(mp):
    await mp.control.set_faults(out_of_order=2)
    pid = (await mp.create()).json()["id"]
    await asyncio.sleep(0.1)
    assert mp.receiver.received == []  # held
    await mp.control.approve(pid)
    reqs = await mp.receiver.wait_for(2)
    assert [r.json["action"] for r in reqs] == ["payment.updated", "payment.created"]
    assert reqs[0].json["id"] > reqs[1].json["id"]
    await mp.control.set_faults(out_of_order=5)
    await mp.control.refund(pid)
    assert await mp.control.flush_webhooks() == 1
    assert (await mp.receiver.wait_for(3))[2].json["action"] == "payment.updated"


async def test_bad_signature_fault_fails_verification(mp):
    pid = await created_payment(mp)
    await mp.control.set_faults(bad_signature=True)
    await mp.control.approve(pid)
    req = (await mp.receiver.wait_for(2))[1]
    assert signature_ok(mp.receiver.received[0])
    assert not signature_ok(req)
    assert signature_ok(req, SECRET + "-wrong")  # shape is right, only the key is wrong


async def test_receiver_500_is_retried_with_increasing_x_retry():
    async with mp_harness(FAST, receiver_statuses=[500, 503, 500]) as mp:
        pid = (await mp.create()).json()["id"]
        reqs = await mp.receiver.wait_for(4)
        assert [r.headers["x-retry"] for r in reqs] == ["0", "1", "2", "3"]
        assert [r.answered for r in reqs] == [500, 503, 500, 200]
        assert len({r.json["id"] for r in reqs}) == 1
        log = await mp.control.webhooks()
        assert [(e["attempt"], e["status"]) for e in log] == [
            (0, 500),
            (1, 503),
            (2, 500),
            (3, 200),
        ]
        assert all(e["payment_id"] == pid for e in log)


async def test_retries_stop_after_configured_attempts_and_unreachable_url():
    config = MercadoPagoConfig(webhook_secret=SECRET, webhook_retry_delays=(0.02, 0.02))
    async with mp_harness(config) as mp:
        await mp.create(notification_url="http://127.0.0.1:9/unreachable")
        await mp.dispatcher.drain()
        log = await mp.control.webhooks()
        assert [e["attempt"] for e in log] == [0, 1, 2]
        assert all(e["status"] is None and e["error"] for e in log)


async def test_drop_fault_sends_nothing_but_status_is_readable(mp):
    pid = await created_payment(mp)
    await mp.control.set_faults(drop=True)
    await mp.control.approve(pid)
    await asyncio.sleep(0.2)
    assert len(mp.receiver.received) == 1
    log = await mp.control.webhooks()
    assert log[-1]["dropped"] is True and log[-1]["status"] is None
    assert (await mp.api.get(f"/v1/payments/{pid}")).json()["status"] == "approved"


async def test_delay_fault_postpones_delivery(mp):
    await mp.control.set_faults(delay_ms=300)
    await mp.create()
    await asyncio.sleep(0.1)
    assert mp.receiver.received == []
    assert len(await mp.receiver.wait_for(1, within=2)) == 1


async def test_expiry_is_applied_lazily_on_read_and_sends_webhook():
    # A sweep that never runs during the test: only the lazy path can expire it.
    async with mp_harness(replace(FAST, sweep_interval=3600)) as mp:
        body = {"date_of_expiration": expiry_in(timedelta(minutes=31))}
        pid = (await mp.create(**body)).json()["id"]
        await mp.receiver.wait_for(1)
        mp.state.clock_offset = timedelta(minutes=32)
        assert mp.state.payments[pid].status == "pending"
        got = (await mp.api.get(f"/v1/payments/{pid}")).json()
        assert (got["status"], got["status_detail"]) == ("cancelled", "expired")
        req = (await mp.receiver.wait_for(2))[1]
        assert req.json["action"] == "payment.updated" and signature_ok(req)
        assert (await mp.api.post(f"/_sandbox/mp/payments/{pid}/approve")).status_code == 409


async def test_expiry_background_sweep_via_clock(mp):
    pid = (await mp.create(date_of_expiration=expiry_in(timedelta(minutes=40)))).json()["id"]
    await mp.receiver.wait_for(1)
    mp.state.clock_offset = timedelta(minutes=41)  # no API read: the sweep must notice
    req = (await mp.receiver.wait_for(2, within=2))[1]
    assert req.json["data"]["id"] == str(pid)
    assert mp.state.payments[pid].status_detail == "expired"
    later = expiry_in(timedelta(minutes=41 + 60))  # valid against the moved clock
    other = (await mp.create(key="k2", date_of_expiration=later)).json()["id"]
    moved = await mp.control.advance_clock(2 * 3600)
    assert moved["expired"] == [other]


async def test_shutdown_cancels_pending_retries_cleanly():
    config = MercadoPagoConfig(webhook_secret=SECRET, webhook_retry_delays=(30.0,))
    async with mp_harness(config, receiver_statuses=[500]) as mp:
        await mp.create()
        await mp.receiver.wait_for(1)
        dispatcher = mp.dispatcher
        assert len(dispatcher._tasks) == 1  # sleeping before the retry
    assert dispatcher._tasks == set()


async def test_default_notification_url_is_used_without_notification_url():
    async with mp_harness(FAST) as mp:
        mp.state.config = replace(FAST, default_notification_url=f"{mp.receiver_url}/panel")
        pid = (await mp.create(notification_url=None)).json()["id"]
        req = (await mp.receiver.wait_for(1))[0]
        assert req.path == "/panel" and req.query == {"data.id": str(pid), "type": "payment"}
        assert signature_ok(req)

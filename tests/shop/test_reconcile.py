"""Reconciliation against the Mercado Pago stand-in: the same code as webhooks and resync."""

from datetime import UTC, datetime, timedelta

import pytest

from core.models import AuditLog
from fleet import keys
from shop import ledger
from shop.errors import PaymentProviderUnavailable
from shop.models import LedgerEntry, Order, Payment, StockItem
from shop.orders import cancel_order, transition
from shop.payments.payment_reconciler import Policy, reconcile_once
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, PaymentStatus, StockStatus
from tests.shop.helpers import SECRET, make_order, make_store

NOW_POLICY = Policy(
    webhook_grace=timedelta(0), recheck_every=timedelta(0), delivery_grace=timedelta(0)
)


async def paid_setup(svc, mp, quantity=1):
    store = await make_store(price_cents=1990)
    order = await make_order(store, quantity=quantity)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    return store, order, payment


async def stream_len(svc, store):
    return await svc.redis.xlen(keys.delivery_stream(store["instance"].id))


async def test_create_pix_payment_is_idempotent_per_order(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    assert payment.provider_payment_id and payment.qr_code and payment.expires_at
    assert (await create_pix_payment(svc, order.id, "buyer:555")).id == payment.id
    assert len(await mp.control.payments()) == 1
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["external_reference"] == str(payment.id)
    assert remote["transaction_amount"] == 19.9


async def test_provider_down_then_retry_makes_exactly_one_charge(svc, mp):
    store = await make_store()
    order = await make_order(store)
    await mp.control.set_faults(api_error_status=503, api_error_count=50)
    with pytest.raises(PaymentProviderUnavailable):
        await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.clear_faults()
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    assert await Payment.all().count() == 1 and payment.provider_payment_id
    assert len(await mp.control.payments()) == 1


async def test_lost_webhook_is_repaired_by_reconciliation(svc, mp):
    await mp.control.set_faults(drop=True)
    store, order, payment = await paid_setup(svc, mp)
    await mp.control.approve(int(payment.provider_payment_id))
    report = await reconcile_once(svc, NOW_POLICY)
    assert report.payments_checked == 1 and report.changes
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.APPROVED
    assert (await ledger.balance(store["tenant"].id)).total_cents == 1990 - 100
    entries = await svc.redis.xrange(keys.delivery_stream(store["instance"].id))
    assert [e[1] for e in entries] == [{"order_id": str(order.id)}]
    again = await reconcile_once(svc, Policy(delivery_grace=timedelta(hours=1)))
    assert again.changes == [] and await stream_len(svc, store) == 1


async def test_resync_reports_no_change_the_second_time(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    await mp.control.approve(int(payment.provider_payment_id))
    first = await sync_payment(svc, str(payment.id), "admin:token:x")
    assert first.changed and any("pending → approved" in c for c in first.changes)
    assert "delivery enqueued" in first.changes
    second = await sync_payment(svc, payment.provider_payment_id, "admin:token:x")
    assert not second.changed and second.as_dict()["changes"] == ["no change"]


async def test_expired_pix_expires_the_order_and_releases_stock(svc, mp):
    store, order, payment = await paid_setup(svc, mp, quantity=2)
    await mp.control.expire(int(payment.provider_payment_id))
    result = await sync_payment(svc, str(payment.id), "system:test")
    assert f"order {order.id} pending → expired" in result.changes
    assert await StockItem.filter(status=StockStatus.AVAILABLE).count() == 5
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.CANCELLED
    assert await LedgerEntry.all().count() == 0


@pytest.mark.parametrize("how, kind", [("refund", "refund"), ("chargeback", "chargeback")])
async def test_refund_or_chargeback_after_delivery_reverses_the_ledger(svc, mp, how, kind):
    store, order, payment = await paid_setup(svc, mp)
    pid = int(payment.provider_payment_id)
    await mp.control.approve(pid)
    await sync_payment(svc, str(payment.id), "system:test")
    await transition(order.id, OrderStatus.DELIVERED, "worker:test")
    await getattr(mp.control, how)(pid)
    result = await sync_payment(svc, str(payment.id), "system:test")
    assert f"order {order.id} delivered → refunded" in result.changes
    assert f"ledger: {kind} reversal booked" in result.changes
    assert (await ledger.balance(store["tenant"].id)).total_cents == 0
    assert await ledger.account_total(ledger.FEES) == 0
    assert not (await sync_payment(svc, str(payment.id), "system:test")).changed


async def test_approved_then_refunded_while_unseen_nets_to_zero_without_delivery(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    pid = int(payment.provider_payment_id)
    await mp.control.approve(pid)
    await mp.control.refund(pid)
    result = await sync_payment(svc, str(payment.id), "system:test")
    assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
    assert "delivery enqueued" not in result.changes and await stream_len(svc, store) == 0
    assert (await ledger.balance(store["tenant"].id)).total_cents == 0


async def test_paid_after_buyer_cancelled_is_refunded_automatically(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    await cancel_order(order.id, "buyer:555")
    await mp.control.approve(int(payment.provider_payment_id))
    result = await sync_payment(svc, str(payment.id), "system:test")
    assert "refund requested at Mercado Pago (order already closed)" in result.changes
    remote = await mp.control.payment(int(payment.provider_payment_id))
    assert remote["status"] == "refunded"
    await sync_payment(svc, str(payment.id), "system:test")
    assert (await Payment.get(id=payment.id)).status == PaymentStatus.REFUNDED
    assert (await Order.get(id=order.id)).status == OrderStatus.CANCELLED
    assert await LedgerEntry.all().count() == 0
    assert await AuditLog.filter(action="payment.auto_refund").count() == 1


async def test_amount_mismatch_changes_nothing(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    await Payment.filter(id=payment.id).update(amount_cents=1)
    await mp.control.approve(int(payment.provider_payment_id))
    result = await sync_payment(svc, str(payment.id), "system:test")
    assert result.outcome == "mismatch" and not result.changed
    assert (await Order.get(id=order.id)).status == OrderStatus.PENDING


async def test_paid_but_undelivered_orders_are_requeued(svc, mp):
    store, order, payment = await paid_setup(svc, mp)
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    report = await reconcile_once(svc, NOW_POLICY)
    assert report.deliveries_requeued == 1 and await stream_len(svc, store) == 2
    await transition(order.id, OrderStatus.DELIVERED, "worker:test")
    assert (await reconcile_once(svc, NOW_POLICY)).deliveries_requeued == 0


async def test_order_whose_charge_never_reached_the_provider_expires(svc, mp):
    store = await make_store()
    order = await make_order(store, quantity=1, reserved_for=timedelta(minutes=-5))
    report = await reconcile_once(svc, NOW_POLICY)
    assert report.orders_expired == 1
    assert (await Order.get(id=order.id)).status == OrderStatus.EXPIRED
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 0


async def test_event_accepted_but_never_processed_is_finished_by_the_reconciler(svc, mp):
    """The portal died after answering 200 and before reconciling: nothing is lost."""
    import time as _time

    from shop.models import WebhookEvent
    from shop.payments.signature import sign
    from shop.payments.webhook_intake import receive_mercadopago

    await mp.control.set_faults(drop=True)
    store, order, payment = await paid_setup(svc, mp)
    pid = payment.provider_payment_id
    await mp.control.approve(int(pid))
    ts = str(int(_time.time() * 1000))
    headers = {"x-request-id": "r1", "x-signature": f"ts={ts},v1={sign(SECRET, pid, 'r1', ts)}"}
    body = b'{"id": 9, "type": "payment", "action": "payment.updated", "data": {"id": "%s"}}'
    receipt = await receive_mercadopago(
        SECRET, {"data.id": pid, "type": "payment"}, headers, body % pid.encode()
    )
    assert receipt.status == 200 and receipt.to_process  # ... and then the process died
    await WebhookEvent.all().update(received_at=datetime.now(UTC) - timedelta(minutes=1))
    report = await reconcile_once(svc, Policy(webhook_grace=timedelta(hours=1)))
    assert report.events_retried == 1
    assert (await WebhookEvent.get(dedupe_key=receipt.dedupe_key)).outcome == "processed"
    assert (await Order.get(id=order.id)).status == OrderStatus.PAID


async def test_event_writer_groups_concurrent_deliveries_and_dedupes_within_a_batch(db):
    import asyncio

    from shop.models import WebhookEvent
    from shop.payments.webhook_workers import EventWriter

    writer = EventWriter()
    fields = [
        {"outcome": "accepted", "dedupe_key": f"mp:{i % 5}:1:payment.updated"} for i in range(20)
    ] + [{"outcome": "invalid_signature"}]
    outcomes = await asyncio.gather(*(writer(f) for f in fields))
    assert outcomes.count("accepted") == 5 and outcomes.count("duplicate") == 15
    assert await WebhookEvent.all().count() == 6  # duplicates are answered, not stored
    assert (
        await writer({"outcome": "accepted", "dedupe_key": "mp:0:1:payment.updated"}) == "duplicate"
    )


async def test_waiting_stock_orders_filled_by_a_restock_are_requeued_only_when_complete(svc, mp):
    """The reconciler is the only sweeper: a restock that filled a waiting order but whose
    delivery entry never reached the worker (Redis down) is re-enqueued; a half-filled one
    keeps waiting."""
    store, order, payment = await paid_setup(svc, mp, quantity=2)
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:test")
    await transition(order.id, OrderStatus.WAITING_STOCK, "worker:test")
    before = await stream_len(svc, store)
    items = await StockItem.filter(order_id=order.id).order_by("id")
    assert len(items) == 2
    await StockItem.filter(id=items[0].id).update(status=StockStatus.SOLD)
    await StockItem.filter(id=items[1].id).update(status=StockStatus.AVAILABLE, order_id=None)
    assert (await reconcile_once(svc, NOW_POLICY)).deliveries_requeued == 0
    assert await stream_len(svc, store) == before
    await StockItem.filter(id=items[1].id).update(status=StockStatus.SOLD, order_id=order.id)
    assert (await reconcile_once(svc, NOW_POLICY)).deliveries_requeued == 1
    assert await stream_len(svc, store) == before + 1
    entries = await svc.redis.xrange(keys.delivery_stream(store["instance"].id))
    assert entries[-1][1]["order_id"] == str(order.id)

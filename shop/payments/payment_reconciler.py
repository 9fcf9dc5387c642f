"""Periodic reconciliation with Mercado Pago: repairs whatever the webhooks missed.

One pass (`reconcile_once`):
1. webhook events left `accepted` (process died) or failed transiently → processed again;
2. payments still pending/in process after their webhook should have arrived → asked about;
3. pending orders past their reservation with no charge at the provider → expired;
4. paid orders not delivered after a grace period, and `waiting_stock` orders a restock filled
   whose delivery never reached their worker → delivery re-enqueued (never re-allocated): the
   backstop behind the relay below. Bot workers do not poll the database for it.
Beside the passes, `run_forever` runs the delivery relay (`shop.outbox.Relay`): owed
deliveries (`Order.wake_at`) are woken within seconds, also after a Redis outage.
Once a day (`run_forever`, and every `--once` run) finished `webhook_events` older than
WEBHOOK_RETENTION_DAYS are deleted (`shop.payments.webhook_retention`).

The process that runs it is `python -m reconciler [--interval 30] [--once]`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from fleet.alerting import raise_alert
from fleet.models import AlertKind
from shop.access_relay import AccessRelay
from shop.allocation import sold_items
from shop.errors import ShopError
from shop.models import Order, Payment, WebhookEvent
from shop.orders import transition
from shop.outbox import Relay, enqueue_delivery
from shop.payments import cart_closed_lines
from shop.payments.connected_gateway import refresh_connected_tokens
from shop.payments.mp_ids import is_provider_id
from shop.payments.payment_polling import PollBudget, poll_forever
from shop.payments.payment_transitions import transition_payment
from shop.payments.refunds import release_stale_holds
from shop.payments.service import PaymentServices
from shop.payments.sync import sync_payment
from shop.payments.webhook_intake import ACCEPTED, TRANSIENT, process_events
from shop.payments.webhook_retention import prune_webhook_events
from shop.states import OrderStatus, PaymentStatus

log = logging.getLogger(__name__)
ACTOR = "system:reconciler"
RELAY_INTERVAL_S = 0.5  # DELIVERY_RELAY_INTERVAL_MS


@dataclass
class Policy:
    webhook_grace: timedelta = timedelta(seconds=60)  # a webhook should have come by then
    recheck_every: timedelta = timedelta(seconds=60)  # ask about one payment at most this often
    delivery_grace: timedelta = timedelta(seconds=60)  # paid but undelivered after this
    event_retry_window: timedelta = timedelta(hours=24)
    batch: int = 100
    webhook_retention: timedelta = timedelta(days=30)  # WEBHOOK_RETENTION_DAYS
    prune_every: timedelta = timedelta(days=1)


@dataclass
class ReconcileReport:
    events_retried: int = 0
    payments_checked: int = 0
    orders_expired: int = 0
    deliveries_requeued: int = 0
    refund_holds_released: int = 0
    seller_tokens_refreshed: int = 0  # connected sellers' Mercado Pago tokens renewed
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _retry_events(
    svc: PaymentServices, now: datetime, policy: Policy, report: ReconcileReport
) -> None:
    window = Q(
        received_at__gte=now - policy.event_retry_window,
        received_at__lte=now - timedelta(seconds=30),
    )
    stuck = (
        await WebhookEvent.filter(
            window, Q(outcome=ACCEPTED) | Q(outcome="error", detail__startswith=TRANSIENT)
        )
        .order_by("id")
        .limit(policy.batch)
    )
    by_payment: dict[str, list[str]] = {}
    for event in stuck:
        if event.dedupe_key and is_provider_id(event.data_id):
            by_payment.setdefault(event.data_id, []).append(event.dedupe_key)
    for provider_id, dedupe_keys in by_payment.items():
        report.events_retried += len(dedupe_keys)
        result = await process_events(svc, dedupe_keys, provider_id, ACTOR)
        if result is not None and result.changed:
            report.changes.append(f"webhooks for {provider_id}: " + "; ".join(result.changes))


async def _check_payments(
    svc: PaymentServices, now: datetime, policy: Policy, report: ReconcileReport
) -> None:
    due = (
        await Payment.filter(
            Q(status__in=(PaymentStatus.PENDING, PaymentStatus.IN_PROCESS)),
            Q(created_at__lte=now - policy.webhook_grace),
            Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=now - policy.recheck_every),
        )
        .order_by("created_at")
        .limit(policy.batch)
    )
    approved_open = await Payment.filter(
        status=PaymentStatus.APPROVED, order__status=OrderStatus.PENDING
    ).limit(policy.batch)
    # a cart paid after some lines closed whose refund of them has not gone through yet
    owing = await cart_closed_lines.payments_owing(now, policy.batch)
    for payment in [*due, *approved_open, *owing]:
        report.payments_checked += 1
        try:
            result = await sync_payment(svc, str(payment.id), ACTOR)
        except ShopError as exc:
            report.errors.append(f"payment {payment.id}: {exc}")
            continue
        if result.outcome == "not_at_provider" and payment.created_at <= now - timedelta(
            minutes=10
        ):
            await _cancel_never_created(payment.id)
        if result.changed:
            report.changes.append(f"payment {payment.id}: " + "; ".join(result.changes))
            await late_payment_alert(payment)


async def _cancel_never_created(payment_id: object) -> None:
    """A charge Mercado Pago never got (10 minutes on): cancelled, if it is still pending."""
    async with in_transaction() as conn:
        payment = await Payment.filter(id=payment_id).using_db(conn).select_for_update().first()
        if payment is None or payment.status != PaymentStatus.PENDING:
            return  # moved on meanwhile (a late answer from the provider)
        await transition_payment(
            payment,
            [PaymentStatus.CANCELLED],
            ACTOR,
            using_db=conn,
            after={"status": str(PaymentStatus.CANCELLED), "status_detail": "never_created"},
        )
        payment.status_detail = "never_created"
        await payment.save(using_db=conn, update_fields=["status", "status_detail", "updated_at"])


async def _expire_orphan_orders(now: datetime, policy: Policy, report: ReconcileReport) -> None:
    """Pending orders past their reservation whose charge never reached the provider."""
    overdue = await Order.filter(
        status=OrderStatus.PENDING, reserved_until__lte=now - policy.webhook_grace
    ).limit(policy.batch)
    for order in overdue:
        open_charge = await Payment.filter(
            Q(order_id=order.id) | Q(cart_id=order.cart_id or -1),  # a cart line: its cart's
            provider_payment_id__isnull=False,
            status__in=(PaymentStatus.PENDING, PaymentStatus.IN_PROCESS, PaymentStatus.APPROVED),
        ).exists()
        if open_charge:
            continue  # the provider decides; step 2 asks it
        moved = await transition(
            order.id, OrderStatus.EXPIRED, ACTOR, reason="reservation lapsed without a PIX charge"
        )
        if moved.changed:
            report.orders_expired += 1
            report.changes.append(f"order {order.id} pending → expired")


async def _requeue_deliveries(
    svc: PaymentServices, now: datetime, policy: Policy, report: ReconcileReport
) -> None:
    before = now - policy.delivery_grace
    stale = list(
        await Order.filter(status=OrderStatus.PAID, paid_at__lte=before)
        .order_by("id")
        .limit(policy.batch)
    )
    waiting = (
        await Order.filter(status=OrderStatus.WAITING_STOCK, updated_at__lte=before)
        .order_by("id")
        .limit(policy.batch)
    )
    for order in waiting:  # filled by a restock (items sold to it) but never delivered
        if len(await sold_items(order.id)) >= order.quantity:
            stale.append(order)
    for order in stale:
        if await enqueue_delivery(svc.redis, order):
            report.deliveries_requeued += 1


async def late_payment_alert(before: Payment) -> None:
    """`payment_late`: a pending payment the webhooks never told us was approved (one open
    alert counts them; resolved after ALERT_QUIET_MINUTES without another)."""
    if before.status not in (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS):
        return
    after = await Payment.get_or_none(id=before.id)
    if after is None or after.status != PaymentStatus.APPROVED:
        return
    await raise_alert(
        AlertKind.PAYMENT_LATE,
        f"the reconciler found payment {after.id} (order #{after.order_id}) approved: "
        "its webhook never arrived",
        tenant_id=after.tenant_id,
        details={"payment_id": str(after.id), "order_id": after.order_id},
    )


async def reconcile_once(
    svc: PaymentServices, policy: Policy | None = None, now: datetime | None = None
) -> ReconcileReport:
    """One reconciliation pass; safe to run concurrently with webhooks and other passes."""
    policy = policy or Policy()
    now = now or datetime.now(UTC)
    report = ReconcileReport()
    await _retry_events(svc, now, policy, report)
    await _check_payments(svc, now, policy, report)
    await _expire_orphan_orders(now, policy, report)
    await _requeue_deliveries(svc, now, policy, report)
    report.refund_holds_released = await release_stale_holds(svc, now, policy.batch)
    report.seller_tokens_refreshed = await refresh_connected_tokens(svc.gateway, now)
    return report


async def prune_events(policy: Policy, now: datetime | None = None) -> int:
    """Delete finished webhook events older than the retention; returns how many."""
    cutoff = (now or datetime.now(UTC)) - policy.webhook_retention
    deleted = await prune_webhook_events(cutoff)
    if deleted:
        log.info("pruned %d webhook events received before %s", deleted, cutoff.isoformat())
    return deleted


async def run_forever(
    svc: PaymentServices,
    interval: float,
    stop: asyncio.Event,
    policy: Policy | None = None,
    *,
    relay_interval: float = RELAY_INTERVAL_S,
) -> None:
    """Reconcile every `interval` seconds until `stop` is set, with the delivery relay
    (`shop.outbox.Relay`: owed deliveries woken every `relay_interval` s) and the access
    relay (`shop.access_relay`: workers woken for due access grants) beside it."""
    if svc.redis is None:
        await _reconcile_forever(svc, interval, stop, policy)
        return
    relay = asyncio.create_task(Relay(svc.redis, relay_interval).run(stop))
    access = asyncio.create_task(AccessRelay(svc.redis).run(stop))
    try:
        await _reconcile_forever(svc, interval, stop, policy)
    finally:
        stop.set()
        await relay
        await access


async def _reconcile_forever(
    svc: PaymentServices, interval: float, stop: asyncio.Event, policy: Policy | None = None
) -> None:
    """Reconcile every `interval` seconds until `stop` is set (pruning old webhook events on
    the first pass and then once per `policy.prune_every`); a failed pass is logged."""
    policy = policy or Policy()
    last_prune: float | None = None
    while not stop.is_set():
        try:
            report = await reconcile_once(svc, policy)
            if report.changes or report.errors:
                log.info("reconcile: %s", report)
        except Exception:  # noqa: BLE001 - keep the loop alive; the next pass retries
            log.exception("reconcile pass failed")
        if (
            last_prune is None
            or time.monotonic() - last_prune >= policy.prune_every.total_seconds()
        ):
            try:
                await prune_events(policy)
                last_prune = time.monotonic()
            except Exception:  # noqa: BLE001 - tried again next pass
                log.exception("pruning webhook events failed")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


async def with_poller(
    work: Coroutine[Any, Any, None], svc: PaymentServices, budget_per_min: int, stop: asyncio.Event
) -> None:
    """Run `work` with the open-PIX poller (`shop.payments.payment_polling`) beside it."""
    if budget_per_min <= 0:  # polling turned off
        await work
        return
    poller = asyncio.create_task(poll_forever(svc, PollBudget(svc.redis, budget_per_min), stop))
    try:
        await work
    finally:
        stop.set()
        await poller

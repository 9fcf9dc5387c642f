"""Indicators the runbook asks for, computed from the payment data (the admin API shows them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from tortoise.functions import Count

from shop.models import Order, Payment, WebhookEvent, Withdrawal
from shop.states import PAID_ORDER_STATES, OrderStatus, WithdrawalStatus

BRT = timezone(timedelta(hours=-3))  # Brasília time (no daylight saving since 2019)

# Deliveries we could not verify or act on; duplicates, ignored topics and unknown payments
# were handled correctly and count as successes.
WEBHOOK_FAILURES = ("invalid_signature", "stale", "error")


async def webhook_success_rate(since: datetime, until: datetime | None = None) -> float | None:
    """Share (0..1) of webhook deliveries in [since, until) verified and acted on; None if none."""
    query = WebhookEvent.filter(received_at__gte=since)
    if until is not None:
        query = query.filter(received_at__lt=until)
    total = await query.count()
    if total == 0:
        return None
    failed = await query.filter(outcome__in=WEBHOOK_FAILURES).count()
    return round((total - failed) / total, 4)


CONFIRMATION_SOURCES = ("webhook", "poll", "button", "reconcile")


async def confirmation_counts(since: datetime) -> dict[str, dict[str, int]]:
    """Payments approved per path that first saw the approval (`Payment.confirmed_via`):
    {source: {"last_24h": n approved since `since`, "total": n}}. Many by polling or the button
    means webhooks are being lost."""
    out = {s: {"last_24h": 0, "total": 0} for s in CONFIRMATION_SOURCES}
    for field, query in (
        ("total", Payment.exclude(confirmed_via="")),
        ("last_24h", Payment.exclude(confirmed_via="").filter(approved_at__gte=since)),
    ):
        rows = (
            await query.group_by("confirmed_via")
            .annotate(n=Count("id"))
            .values_list("confirmed_via", "n")
        )
        for source, n in rows:
            out.setdefault(source, {"last_24h": 0, "total": 0})[field] = n
    return out


async def open_order_counts(tenant_id: int | None = None) -> dict[str, int]:
    """How many orders are `pending` (waiting for PIX), `waiting_stock` (paid, no stock) and
    `awaiting_fulfilment` (paid manual services staff must deliver)."""
    query = Order.all() if tenant_id is None else Order.filter(tenant_id=tenant_id)
    return {
        "pending": await query.filter(status=OrderStatus.PENDING).count(),
        "waiting_stock": await query.filter(status=OrderStatus.WAITING_STOCK).count(),
        # paid manual-delivery services staff have not delivered yet (issue 16)
        "awaiting_fulfilment": await query.filter(status=OrderStatus.AWAITING_FULFILMENT).count(),
    }


async def mean_withdrawal_seconds(since: datetime | None = None) -> float | None:
    """Mean time requested → completed of withdrawals completed since `since`; None if none."""
    query = Withdrawal.filter(status=WithdrawalStatus.COMPLETED, completed_at__isnull=False)
    if since is not None:
        query = query.filter(completed_at__gte=since)
    rows = await query.values_list("requested_at", "completed_at")
    if not rows:
        return None
    total: float = sum((done - asked).total_seconds() for asked, done in rows)
    return round(total / len(rows), 1)


async def daily_sales(
    days: int, tenant_id: int | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Orders paid per Brasília day (oldest first; the last `days` days, today included): how
    many, their total in centavos, and how many could not be delivered automatically. Orders
    refunded since are not sales. One query; the days are bucketed here, the same way on
    SQLite and PostgreSQL."""
    today = (
        (now or datetime.now(UTC))
        .astimezone(BRT)
        .replace(hour=0, minute=0, second=0, microsecond=0)
    )
    start = today - timedelta(days=days - 1)
    query = Order.filter(status__in=list(PAID_ORDER_STATES), paid_at__gte=start.astimezone(UTC))
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    rows = await query.values_list("paid_at", "total_cents", "delivery_path")
    buckets: dict[date, dict[str, Any]] = {
        (start + timedelta(days=i)).date(): {"paid": 0, "revenue_cents": 0, "failed": 0}
        for i in range(days)
    }
    for paid_at, total, path in rows:
        bucket = buckets.get(paid_at.astimezone(BRT).date())
        if bucket is None:  # paid "tomorrow": a clock ahead of ours
            continue
        bucket["paid"] += 1
        bucket["revenue_cents"] += int(total)
        bucket["failed"] += 1 if str(path) == "failed" else 0
    return [{"day": day.isoformat(), **figures} for day, figures in buckets.items()]

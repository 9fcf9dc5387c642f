"""Indicators the runbook asks for, computed from the payment data (the admin API shows them)."""

from __future__ import annotations

from datetime import datetime

from shop.models import Order, WebhookEvent, Withdrawal
from shop.states import OrderStatus, WithdrawalStatus

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


async def open_order_counts(tenant_id: int | None = None) -> dict[str, int]:
    """How many orders are `pending` (waiting for PIX) and `waiting_stock` (paid, no stock)."""
    query = Order.all() if tenant_id is None else Order.filter(tenant_id=tenant_id)
    return {
        "pending": await query.filter(status=OrderStatus.PENDING).count(),
        "waiting_stock": await query.filter(status=OrderStatus.WAITING_STOCK).count(),
    }


async def mean_withdrawal_seconds(since: datetime | None = None) -> float | None:
    """Mean time requested → completed of withdrawals completed since `since`; None if none."""
    query = Withdrawal.filter(status=WithdrawalStatus.COMPLETED, completed_at__isnull=False)
    if since is not None:
        query = query.filter(completed_at__gte=since)
    rows = await query.values_list("requested_at", "completed_at")
    if not rows:
        return None
    total = sum((done - asked).total_seconds() for asked, done in rows)
    return round(total / len(rows), 1)

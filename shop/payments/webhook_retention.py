"""Retention of `webhook_events`: finished events older than WEBHOOK_RETENTION_DAYS go.

The reconciler (`python -m reconciler`) calls `prune_webhook_events` once a day. Events
still `accepted` (work not done yet) are kept whatever their age; every other outcome is final
(`error` events are only retried for `Policy.event_retry_window`, a day), and the payment,
order, ledger and audit log keep what they changed.
"""

from __future__ import annotations

from datetime import datetime

from shop.models import WebhookEvent
from shop.payments.webhook_intake import ACCEPTED

PRUNE_BATCH = 5_000  # rows per DELETE: short transactions, bounded IN lists


async def prune_webhook_events(older_than: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete finished events received before `older_than`; returns how many went."""
    deleted = 0
    while True:
        ids = (
            await WebhookEvent.filter(received_at__lt=older_than)
            .exclude(outcome=ACCEPTED)
            .order_by("id")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return deleted
        for start in range(0, len(ids), 500):  # keep under SQLite's variable limit
            deleted += await WebhookEvent.filter(id__in=ids[start : start + 500]).delete()
        if len(ids) < batch:
            return deleted

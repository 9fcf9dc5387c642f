"""What the seller and the buyer see of accesses (issue 16): subscriber lists by tab, monthly
recurring revenue (MRR) over time, renewals, and a buyer's active accesses. Read only.

MRR at a moment T: for every timed access active at T (started, not yet at its end; a
revoked one ends when it was revoked), the total of the last paid, not refunded order that
started or renewed it whose period began by T, times 30 / the days that order paid for.
Accesses given by hand (no order) and roles bought for good count 0 in MRR; they still count
as active subscribers when they are timed. The page's headline is the chart's last point
(T = now), so both always agree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shop.indicators import BRT
from shop.models import AccessGrant, AccessOrder, AccessStatus
from shop.states import PAID_ORDER_STATES

ENDING_WITHIN = timedelta(days=7)
MONTHS = 12
PAGE_SIZE = 50
BUYER_LIST_LIMIT = 10
_ENDED = (AccessStatus.ENDED, AccessStatus.REVOKED)


class Tab(StrEnum):
    ACTIVE = "active"
    ENDING = "ending"  # active, ending within 7 days
    ENDED = "ended"  # ended or revoked


def _tab_query(tenant_id: int, tab: Tab, now: datetime) -> Any:
    # `store_role` rows carry the buyer role's removal after a refund: not an access
    query = AccessGrant.filter(tenant_id=tenant_id, store_role=False)
    if tab == Tab.ACTIVE:
        return query.filter(status=AccessStatus.ACTIVE)
    if tab == Tab.ENDING:
        return query.filter(
            status=AccessStatus.ACTIVE, ends_at__gte=now, ends_at__lt=now + ENDING_WITHIN
        )
    return query.filter(status__in=_ENDED)


_ORDERING = {Tab.ACTIVE: "-starts_at", Tab.ENDING: "ends_at", Tab.ENDED: "-updated_at"}


async def tab_counts(tenant_id: int, now: datetime) -> dict[str, int]:
    return {tab.value: await _tab_query(tenant_id, tab, now).count() for tab in Tab}


async def subscribers(
    tenant_id: int, tab: Tab, now: datetime, page: int = 1
) -> tuple[list[AccessGrant], int]:
    """One page of the store's accesses in `tab` (variation, product and order loaded) and
    how many there are."""
    query = _tab_query(tenant_id, tab, now)
    total = await query.count()
    rows = (
        await query.order_by(_ORDERING[tab], "-id")
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
        .prefetch_related("variation__product", "order")
    )
    return list(rows), total


@dataclass(frozen=True)
class Point:
    """One point of the MRR chart: the state at `at` and the renewals paid in its month."""

    label: str
    at: datetime
    mrr_cents: int
    active: int
    renewals: int


def month_ends(now: datetime, months: int = MONTHS) -> list[tuple[str, datetime, datetime]]:
    """(label 'MM/YY', month start, moment measured) for the last `months` Brasília months,
    oldest first; the current month is measured now, the others at their last instant."""
    local = now.astimezone(BRT)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out: list[tuple[str, datetime, datetime]] = []
    for _ in range(months):
        following = (start + timedelta(days=32)).replace(day=1)
        at = now if following > local else following - timedelta(microseconds=1)
        out.append((start.strftime("%m/%y"), start, at))
        start = (start - timedelta(days=1)).replace(day=1)
    return out[::-1]


def _period_days(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return max(1.0, (end - start).total_seconds() / 86400)


async def mrr_series(tenant_id: int, now: datetime | None = None) -> list[Point]:
    """MRR, active timed subscribers and renewals for each of the last `MONTHS` months."""
    now = now or datetime.now(UTC)
    months = month_ends(now)
    window_start = months[0][1]
    grants = await AccessGrant.filter(
        tenant_id=tenant_id, ends_at__isnull=False, ends_at__gt=window_start, starts_at__lte=now
    ).values("id", "status", "starts_at", "ends_at", "updated_at")
    paid = await AccessOrder.filter(
        access__tenant_id=tenant_id,
        access__ends_at__gt=window_start,
        order__status__in=list(PAID_ORDER_STATES),
    ).values(
        "access_id", "period_start", "period_end", "renewal", "created_at", "order__total_cents"
    )
    return series(months, grants, paid)


def series(
    months: list[tuple[str, datetime, datetime]],
    grants: list[dict[str, Any]],
    paid: list[dict[str, Any]],
) -> list[Point]:
    """Pure: the chart's points from the rows `mrr_series` reads (grants: id, status,
    starts_at, ends_at, updated_at; paid access orders: access_id, period_start, period_end,
    renewal, created_at, order__total_cents). Each access adds whole centavos."""
    by_access: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(paid, key=lambda r: r["period_start"]):
        by_access[row["access_id"]].append(row)
    points = []
    for label, month_start, at in months:
        mrr = active = 0
        for g in grants:
            end = g["ends_at"]
            if g["status"] == AccessStatus.REVOKED:
                end = min(end, g["updated_at"])
            if not g["starts_at"] <= at < end:
                continue
            active += 1
            started = [o for o in by_access.get(g["id"], ()) if o["period_start"] <= at]
            days = (
                _period_days(started[-1]["period_start"], started[-1]["period_end"])
                if started
                else None
            )
            if days:
                mrr += round(started[-1]["order__total_cents"] * 30 / days)
        renewals = sum(1 for o in paid if o["renewal"] and month_start <= o["created_at"] <= at)
        points.append(Point(label, at, mrr, active, renewals))
    return points


async def buyer_accesses(tenant_id: int, buyer_discord_id: str) -> list[AccessGrant]:
    """The buyer's active accesses in this store, ending soonest first (for good last)."""
    rows = (
        await AccessGrant.filter(
            tenant_id=tenant_id, buyer_discord_id=buyer_discord_id, status=AccessStatus.ACTIVE
        )
        .order_by("id")
        .limit(BUYER_LIST_LIMIT * 5)
        .prefetch_related("variation__product")
    )
    far = datetime.max.replace(tzinfo=UTC)
    rows = sorted(rows, key=lambda g: g.ends_at or far)
    return rows[:BUYER_LIST_LIMIT]


def access_label(grant: AccessGrant) -> str:
    """'Product — Variation', or '' for an access given by hand without a product."""
    variation = grant.variation
    if variation is None:
        return ""
    return f"{variation.product.name} — {variation.name}"

"""Operational indicators per period (JSON, console charts) and `GET /metrics` for Prometheus."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from pydantic import BaseModel, Field
from quart import Blueprint, Response, current_app
from quart_schema import tag, validate_querystring, validate_response
from tortoise.functions import Count

from fleet.models import Alert
from shop.indicators import (
    daily_sales,
    mean_withdrawal_seconds,
    open_order_counts,
    webhook_success_rate,
)
from shop.models import (
    AdminRequest,
    AdminRequestStatus,
    DeliveryPath,
    Order,
    WebhookEvent,
    Withdrawal,
)
from shop.payments.webhook_guard import rejected_counts
from shop.states import WithdrawalStatus
from web.admin.status import instance_counts, pending_withdrawals
from web.common import dependency_health

log = logging.getLogger(__name__)
bp = Blueprint("indicators", __name__)

PERIODS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
Period = Literal["1h", "24h", "7d", "30d"]
ERROR_STATES = ("error", "crashloop", "backoff")


class IndicatorsQuery(BaseModel):
    period: Period = "24h"


class IndicatorsOut(BaseModel):
    """The runbook's indicators: figures now, and rates over the period."""

    period: str
    since: str
    until: str
    instances: dict[str, int]
    orders: dict[str, int]
    withdrawals: dict[str, float | int | None]
    webhooks: dict[str, float | int | None]
    deliveries: dict[str, float | int | None]


async def _deliveries(since: datetime) -> dict[str, Any]:
    """Automatic delivery by DM vs channel vs failed, for orders paid in the period."""
    rows = (
        await Order.filter(paid_at__gte=since, delivery_path__isnull=False)
        .annotate(n=Count("id"))
        .group_by("delivery_path")
        .values_list("delivery_path", "n")
    )
    counts = {str(p): 0 for p in DeliveryPath}
    for path, n in rows:
        counts[str(path)] = int(n)
    total = sum(counts.values())
    rates = {f"{p}_rate": (round(n / total, 4) if total else None) for p, n in counts.items()}
    return {**counts, "total": total, **rates}


def _instance_summary(counts: dict[str, int]) -> dict[str, int]:
    return {
        **counts,
        "total": sum(counts.values()),
        "online_total": counts.get("online", 0),
        "error_total": sum(counts.get(s, 0) for s in ERROR_STATES),
        "suspended_total": counts.get("suspended", 0),
    }


async def compute(period: str) -> dict[str, Any]:
    """Every indicator for the period ending now."""
    until = datetime.now(UTC)
    since = until - PERIODS[period]
    redis = current_app.config["REDIS"]
    try:
        counts = await instance_counts(redis)
    except Exception:  # noqa: BLE001 - Redis down: the DB figures still help
        log.warning("instance counts unavailable (Redis)", exc_info=True)
        counts = {}
    completed = await Withdrawal.filter(
        status=WithdrawalStatus.COMPLETED, completed_at__gte=since
    ).count()
    return {
        "period": period,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "instances": _instance_summary(counts),
        "orders": {
            **await open_order_counts(),
            "created": await Order.filter(created_at__gte=since).count(),
            "paid": await Order.filter(paid_at__gte=since).count(),
            "delivered": await Order.filter(delivered_at__gte=since).count(),
        },
        "withdrawals": {
            "pending": await pending_withdrawals(),
            "completed": completed,
            "mean_seconds_requested_to_completed": await mean_withdrawal_seconds(since),
        },
        "webhooks": {
            "success_rate": await webhook_success_rate(since),
            "received": await WebhookEvent.filter(received_at__gte=since).count(),
        },
        "deliveries": await _deliveries(since),
    }


@bp.get("/api/indicators")
@tag(["indicators"])
@validate_querystring(IndicatorsQuery)
@validate_response(IndicatorsOut)
async def indicators(query_args: IndicatorsQuery):
    """Instances online vs error/suspended, pending and waiting_stock orders, mean withdrawal
    time, webhook success rate and delivery rate (DM vs channel vs failed) over `period`."""
    return await compute(query_args.period)


class DailyQuery(BaseModel):
    days: int = Field(14, ge=1, le=90)


class DayOut(BaseModel):
    day: str  # YYYY-MM-DD, a Brasília day
    paid: int
    revenue_cents: int
    failed: int  # paid orders that could not be delivered automatically


class DailyOut(BaseModel):
    timezone: str
    days: list[DayOut]


@bp.get("/api/indicators/daily")
@tag(["indicators"])
@validate_querystring(DailyQuery)
@validate_response(DailyOut)
async def indicators_daily(query_args: DailyQuery):
    """Orders paid per day over the last `days` Brasília days (today included, oldest first):
    how many, their total in centavos, and how many failed automatic delivery."""
    return {"timezone": "America/Sao_Paulo", "days": await daily_sales(query_args.days)}


class _Figures:
    """A one-shot collector that yields pre-computed gauges."""

    def __init__(self, families: list[GaugeMetricFamily | CounterMetricFamily]) -> None:
        self.families = families

    def collect(self):
        yield from self.families


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


async def _business_families() -> list[GaugeMetricFamily]:
    figures = await compute("24h")
    since_30d = datetime.now(UTC) - PERIODS["30d"]
    inst = _gauge("vitrine_instances", "Bot instances by runtime state", ["state"])
    for state, n in figures["instances"].items():
        if not state.endswith("total"):
            inst.add_metric([state], n)
    orders = _gauge("vitrine_orders_open", "Open orders by status", ["status"])
    for status in ("pending", "waiting_stock", "awaiting_fulfilment"):
        orders.add_metric([status], figures["orders"][status])
    pending = _gauge("vitrine_withdrawals_pending", "Withdrawals requested or processing")
    pending.add_metric([], figures["withdrawals"]["pending"])
    mean = _gauge(
        "vitrine_withdrawal_mean_seconds",
        "Mean time requested -> completed of withdrawals completed in 30 days",
    )
    mean.add_metric([], await mean_withdrawal_seconds(since_30d) or 0.0)
    hooks = _gauge(
        "vitrine_webhook_success_ratio",
        "Webhook deliveries verified and acted on, last 24 h (1 when none)",
    )
    rate = figures["webhooks"]["success_rate"]
    hooks.add_metric([], 1.0 if rate is None else rate)
    received = _gauge("vitrine_webhook_events_24h", "Webhook deliveries received, last 24 h")
    received.add_metric([], figures["webhooks"]["received"])
    deliveries = _gauge(
        "vitrine_deliveries_24h", "Orders paid in the last 24 h by delivery path", ["path"]
    )
    for path in DeliveryPath:
        deliveries.add_metric([str(path)], figures["deliveries"][str(path)])
    work = _gauge("vitrine_open_work", "Items waiting for an operator", ["kind"])
    work.add_metric(["requests"], await AdminRequest.filter(status=AdminRequestStatus.OPEN).count())
    work.add_metric(["alerts"], await Alert.filter(acknowledged_at__isnull=True).count())
    return [inst, orders, pending, mean, hooks, received, deliveries, work]


async def _webhook_rejections() -> CounterMetricFamily:
    """Webhook deliveries the portal answered without storing them (shop.payments.webhook_guard):
    the portal processes count in Redis, so every process's requests add up here."""
    family = CounterMetricFamily(
        "vitrine_webhook_rejected",
        "Mercado Pago webhook deliveries answered without being "
        "stored or fetched, by reason (missing/malformed/stale/mismatch signature, "
        "ipn_unknown_payment, ipn_repeated, ipn_ignored, duplicate, rate_limited)",
        labels=["reason"],
    )
    try:
        counts = await rejected_counts(current_app.config["REDIS"])
    except Exception:  # noqa: BLE001 - a scrape must answer even when a figure fails
        log.warning("webhook rejection counts unavailable (Redis)", exc_info=True)
        counts = {}
    for reason, n in sorted(counts.items()):
        family.add_metric([reason], n)
    return family


@bp.get("/metrics")
@tag(["indicators"])
async def metrics():
    """Prometheus text format: the indicators (24 h window) plus process metrics."""
    deps = await dependency_health(current_app)
    up = _gauge("vitrine_dependency_up", "Whether the admin reaches a dependency", ["dependency"])
    for name in ("db", "redis"):
        up.add_metric([name], 1 if deps[name]["ok"] else 0)
    families: list[GaugeMetricFamily | CounterMetricFamily] = [up]
    if deps["redis"]["ok"]:
        families.append(await _webhook_rejections())
    if deps["db"]["ok"]:
        try:
            families += await _business_families()
        except Exception:  # noqa: BLE001 - a scrape must answer even when a figure fails
            log.exception("business metrics failed")
    registry = CollectorRegistry()
    registry.register(_Figures(families))
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")

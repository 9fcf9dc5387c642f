"""`GET /api/status`: is the platform healthy, and what needs attention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from quart import Blueprint, current_app, jsonify

from core.settings import Settings
from fleet import keys
from fleet.models import BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from shop.models import Order, WebhookEvent, Withdrawal
from shop.states import OrderStatus, WithdrawalStatus
from web.common import dependency_health

bp = Blueprint("status", __name__)

WEBHOOK_FAILURES = ("invalid_signature", "stale", "error")
ORCHESTRATOR_STALE_S = keys.ORCHESTRATOR_TTL


async def _portal_health(settings: Settings) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.portal_port}/health"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(url)
        return {"ok": response.status_code == 200, "detail": f"HTTP {response.status_code}"}
    except httpx.HTTPError as exc:
        return {"ok": False, "detail": type(exc).__name__}


async def _orchestrators(redis) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    nodes = sorted(await redis.smembers(keys.ORCHESTRATOR_NODES))
    beats = await asyncio.gather(*(redis.get(keys.orchestrator_heartbeat(n)) for n in nodes))
    now = time.time()
    live = {n: round(now - float(b), 1) for n, b in zip(nodes, beats, strict=True) if b}
    return {
        "ok": bool(live) and min(live.values()) < ORCHESTRATOR_STALE_S,
        "nodes": live,
        "heartbeat_age_s": min(live.values()) if live else None,
    }


async def instance_counts(redis) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Instances by runtime state (an instance with no runtime record counts as stopped)."""
    counts = {str(state): 0 for state in InstanceState}
    ids = await BotInstance.all().values_list("id", flat=True)
    records = await RuntimeStore(redis).get_many(ids)
    for iid in ids:
        record = records.get(iid)
        counts[str(record.state if record else InstanceState.STOPPED)] += 1
    return counts


async def webhook_success_rate(since: datetime) -> float | None:
    """Share of webhook deliveries since `since` that we could verify and act on."""
    total = await WebhookEvent.filter(received_at__gte=since).count()
    if total == 0:
        return None
    failed = await WebhookEvent.filter(received_at__gte=since,
                                       outcome__in=WEBHOOK_FAILURES).count()
    return round((total - failed) / total, 4)


@bp.get("/api/status")
async def status():  # type: ignore[no-untyped-def]
    settings: Settings = current_app.config["VITRINE_SETTINGS"]
    redis = current_app.config["REDIS"]
    deps, portal = await asyncio.gather(dependency_health(current_app),
                                        _portal_health(settings))
    body: dict[str, Any] = {
        "services": {"admin": {"ok": True}, "portal": portal},
        **deps,
    }
    try:
        body["services"]["orchestrator"] = await _orchestrators(redis)
    except Exception as exc:  # noqa: BLE001 - Redis down is already reported above
        body["services"]["orchestrator"] = {"ok": False, "detail": type(exc).__name__}
    if deps["db"]["ok"]:
        since = datetime.now(UTC) - timedelta(hours=24)
        body["orders"] = {
            "pending": await Order.filter(status=OrderStatus.PENDING).count(),
            "waiting_stock": await Order.filter(status=OrderStatus.WAITING_STOCK).count(),
        }
        body["withdrawals"] = {"pending": await Withdrawal.filter(
            status__in=(WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)).count()}
        body["webhooks"] = {"success_rate_24h": await webhook_success_rate(since)}
        if deps["redis"]["ok"]:
            body["instances"] = await instance_counts(redis)
    healthy = (deps["db"]["ok"] and deps["redis"]["ok"] and portal["ok"]
               and body["services"]["orchestrator"]["ok"])
    body["status"] = "ok" if healthy else "degraded"
    return jsonify(body)

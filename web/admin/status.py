"""`GET /api/status`: is the platform healthy, and what needs attention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import BaseModel
from quart import Blueprint, current_app
from quart_schema import tag, validate_response

from core.settings import Settings
from fleet import keys
from fleet.models import Alert, BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from shop.indicators import open_order_counts, webhook_success_rate
from shop.models import AdminRequest, AdminRequestStatus, Withdrawal
from shop.states import WithdrawalStatus
from web.common import dependency_health

bp = Blueprint("status", __name__)

ORCHESTRATOR_STALE_S = keys.ORCHESTRATOR_TTL
PENDING_WITHDRAWALS = (WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)


class Health(BaseModel):
    ok: bool
    detail: str | None = None
    nodes: dict[str, float] | None = None
    heartbeat_age_s: float | None = None


class StatusOut(BaseModel):
    """Services, dependencies and the figures an operator checks first."""

    status: Literal["ok", "degraded"]
    services: dict[str, Health]
    db: Health
    redis: Health
    instances: dict[str, int] | None = None
    orders: dict[str, int] | None = None
    withdrawals: dict[str, int] | None = None
    webhooks: dict[str, float | None] | None = None
    attention: dict[str, int] | None = None


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


async def pending_withdrawals() -> int:
    return await Withdrawal.filter(status__in=PENDING_WITHDRAWALS).count()


async def _business(body: dict[str, Any], redis_ok: bool, redis) -> None:  # type: ignore[no-untyped-def]
    since = datetime.now(UTC) - timedelta(hours=24)
    body["orders"] = await open_order_counts()
    body["withdrawals"] = {"pending": await pending_withdrawals()}
    body["webhooks"] = {"success_rate_24h": await webhook_success_rate(since)}
    body["attention"] = {
        "open_requests": await AdminRequest.filter(status=AdminRequestStatus.OPEN).count(),
        "open_alerts": await Alert.filter(acknowledged_at__isnull=True).count(),
    }
    if redis_ok:
        body["instances"] = await instance_counts(redis)


async def collect_status() -> dict[str, Any]:
    """The body of `GET /api/status` (the console shows the same)."""
    settings: Settings = current_app.config["VITRINE_SETTINGS"]
    redis = current_app.config.get("REDIS")
    deps, portal = await asyncio.gather(dependency_health(current_app),
                                        _portal_health(settings))
    body: dict[str, Any] = {"services": {"admin": {"ok": True}, "portal": portal}, **deps}
    try:
        body["services"]["orchestrator"] = await _orchestrators(redis)
    except Exception as exc:  # noqa: BLE001 - Redis down is already reported above
        body["services"]["orchestrator"] = {"ok": False, "detail": type(exc).__name__}
    if deps["db"]["ok"]:
        await _business(body, deps["redis"]["ok"], redis)
    healthy = (deps["db"]["ok"] and deps["redis"]["ok"] and portal["ok"]
               and body["services"]["orchestrator"]["ok"])
    body["status"] = "ok" if healthy else "degraded"
    return body


@bp.get("/api/status")
@tag(["status"])
@validate_response(StatusOut)
async def status():  # type: ignore[no-untyped-def]
    """Health of portal, admin, orchestrator, DB and Redis; instances by state; open work.

    `status` is `ok` only when every service and dependency answers.
    """
    return await collect_status()

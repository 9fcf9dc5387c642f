"""`GET /api/status`: is the platform healthy, and what needs attention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import httpx
from pydantic import BaseModel
from quart import Blueprint, current_app
from quart_schema import tag, validate_response

from core.settings import Settings
from fleet import keys
from fleet.models import Alert, BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from shop import outbox
from shop.indicators import confirmation_counts, open_order_counts, webhook_success_rate
from shop.models import AdminRequest, AdminRequestStatus, Withdrawal
from shop.states import WithdrawalStatus
from web.common import dependency_health

bp = Blueprint("status", __name__)

ORCHESTRATOR_STALE_S = keys.ORCHESTRATOR_TTL
PENDING_WITHDRAWALS = (WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)


class NodeStatus(BaseModel):
    """One orchestrator node, from the status it publishes with every heartbeat."""

    heartbeat_age_s: float
    workers: int | None = None  # worker processes it watches
    leases: int | None = None  # instances it holds (running or waiting to restart)
    managed: int | None = None  # instances in its view of the database
    adopted: int | None = None  # workers taken over at its last start
    drained: bool | None = None  # `vitrine fleet stop` ran: it starts nothing
    pid: int | None = None


class Health(BaseModel):
    ok: bool
    detail: str | None = None
    nodes: dict[str, float] | None = None
    heartbeat_age_s: float | None = None
    node_status: dict[str, NodeStatus] | None = None
    # nodes that hold instances but stopped beating: their bots move once the leases lapse
    down_nodes: list[str] | None = None


class StatusOut(BaseModel):
    """Services, dependencies and the figures an operator checks first."""

    status: Literal["ok", "degraded"]
    services: dict[str, Health]
    db: Health
    redis: Health
    instances: dict[str, int] | None = None
    # online bots by how their gateway session began: {resume, identify} (worker.resume);
    # many `identify` after crashes means resumes are refused or stored sessions go stale
    gateway: dict[str, int] | None = None
    orders: dict[str, int] | None = None
    withdrawals: dict[str, int] | None = None
    webhooks: dict[str, float | None] | None = None
    # payments approved per path that saw it first (webhook, poll, button, reconcile…):
    # {source: {last_24h, total}}; many by poll/button = webhooks are being lost
    confirmations: dict[str, dict[str, int]] | None = None
    # deliveries owed in the database (shop.outbox): {owed, unwoken}; unwoken > 0 means owed
    # deliveries due for over 10 s that no relay woke (reconciler down, or Redis down)
    deliveries: dict[str, int] | None = None
    attention: dict[str, int] | None = None


async def _portal_health(settings: Settings) -> dict[str, Any]:
    url = f"http://127.0.0.1:{settings.portal_port}/health"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(url)
        return {"ok": response.status_code == 200, "detail": f"HTTP {response.status_code}"}
    except httpx.HTTPError as exc:
        return {"ok": False, "detail": type(exc).__name__}


def _int(raw: str | None) -> int | None:
    return int(float(raw)) if raw else None


async def _orchestrators(redis) -> dict[str, Any]:
    nodes = sorted(await redis.smembers(keys.ORCHESTRATOR_NODES))
    pipe = redis.pipeline(transaction=False)
    for node in nodes:
        pipe.get(keys.orchestrator_heartbeat(node))
        pipe.hgetall(keys.orchestrator_status(node))
    values = await pipe.execute() if nodes else []
    now = time.time()
    live: dict[str, float] = {}
    detail: dict[str, dict[str, Any]] = {}
    for index, node in enumerate(nodes):
        beat, figures = values[2 * index], values[2 * index + 1]
        if not beat:
            continue
        live[node] = round(now - float(beat), 1)
        detail[node] = {
            "heartbeat_age_s": live[node],
            "workers": _int(figures.get("live")),
            "leases": _int(figures.get("leases")),
            "managed": _int(figures.get("managed")),
            "adopted": _int(figures.get("adopted")),
            "pid": _int(figures.get("pid")),
            "drained": figures.get("drained") == "1" if figures.get("drained") else None,
        }
    return {
        "ok": bool(live) and min(live.values()) < ORCHESTRATOR_STALE_S,
        "nodes": live,
        "heartbeat_age_s": min(live.values()) if live else None,
        "node_status": detail,
        "down_nodes": [n for n in nodes if n not in live],
    }


async def instance_counts(redis) -> dict[str, int]:
    """Instances by runtime state (an instance with no runtime record counts as stopped)."""
    counts = {str(state): 0 for state in InstanceState}
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    ids = cast(list[int], await BotInstance.all().values_list("id", flat=True))
    records = await RuntimeStore(redis).get_many(ids)
    for iid in ids:
        record = records.get(iid)
        counts[str(record.state if record else InstanceState.STOPPED)] += 1
    return counts


async def gateway_counts(redis) -> dict[str, int]:
    """Online instances by how their current session began (RESUME or a login)."""
    counts = {"resume": 0, "identify": 0}
    ids = cast(list[int], await BotInstance.all().values_list("id", flat=True))
    for record in (await RuntimeStore(redis).get_many(ids)).values():
        if record.state == InstanceState.ONLINE and record.connected_by in counts:
            counts[record.connected_by] += 1
    return counts


async def pending_withdrawals() -> int:
    return await Withdrawal.filter(status__in=PENDING_WITHDRAWALS).count()


async def _business(body: dict[str, Any], redis_ok: bool, redis) -> None:
    since = datetime.now(UTC) - timedelta(hours=24)
    body["orders"] = await open_order_counts()
    body["withdrawals"] = {"pending": await pending_withdrawals()}
    body["deliveries"] = await outbox.owed_counts()
    body["webhooks"] = {"success_rate_24h": await webhook_success_rate(since)}
    body["confirmations"] = await confirmation_counts(since)
    body["attention"] = {
        "open_requests": await AdminRequest.filter(status=AdminRequestStatus.OPEN).count(),
        "open_alerts": await Alert.filter(acknowledged_at__isnull=True).count(),
    }
    if redis_ok:
        body["instances"] = await instance_counts(redis)
        body["gateway"] = await gateway_counts(redis)


async def collect_status() -> dict[str, Any]:
    """The body of `GET /api/status` (the console shows the same)."""
    settings: Settings = current_app.config["VITRINE_SETTINGS"]
    redis = current_app.config.get("REDIS")
    deps, portal = await asyncio.gather(dependency_health(current_app), _portal_health(settings))
    body: dict[str, Any] = {"services": {"admin": {"ok": True}, "portal": portal}, **deps}
    try:
        body["services"]["orchestrator"] = await _orchestrators(redis)
    except Exception as exc:  # noqa: BLE001 - Redis down is already reported above
        body["services"]["orchestrator"] = {"ok": False, "detail": type(exc).__name__}
    if deps["db"]["ok"]:
        await _business(body, deps["redis"]["ok"], redis)
    healthy = (
        deps["db"]["ok"]
        and deps["redis"]["ok"]
        and portal["ok"]
        and body["services"]["orchestrator"]["ok"]
    )
    body["status"] = "ok" if healthy else "degraded"
    return body


@bp.get("/api/status")
@tag(["status"])
@validate_response(StatusOut)
async def status():
    """Health of portal, admin, orchestrator, DB and Redis; instances by state; open work.

    `status` is `ok` only when every service and dependency answers.
    """
    return await collect_status()

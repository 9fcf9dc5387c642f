"""Alerts (crash loops, repeated errors…) with acknowledge, and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag, validate_querystring, validate_response

from core import audit
from core.models import AuditLog
from fleet.models import Alert, AlertKind
from web.admin.api import (
    MAX_ID,
    ErrorBody,
    OptionalNote,
    PageInfo,
    PageQuery,
    actor,
    error,
    iso,
    json_body,
    page_of,
)

bp = Blueprint("alerts", __name__)


class AlertsQuery(PageQuery):
    kind: AlertKind | None = None
    acknowledged: bool | None = None
    instance_id: int | None = Field(None, ge=0, le=MAX_ID)
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)


class AlertOut(BaseModel):
    id: int
    kind: AlertKind
    instance_id: int | None
    tenant_id: int | None
    message: str
    details: Any = None
    created_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    # issue 18: resolution and the operators' notification
    occurrences: int = 1
    resolved_at: str | None = None
    notified: Any = None
    notify_pending: bool = False
    notify_error: str | None = None


class AlertsOut(BaseModel):
    items: list[AlertOut]
    page: PageInfo


class AuditQuery(PageQuery):
    actor: str | None = Field(None, max_length=100)
    action: str | None = Field(None, max_length=60, description="exact, or a prefix ending in .")
    target_type: str | None = Field(None, max_length=40)
    target_id: str | None = Field(None, max_length=64)
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    since: datetime | None = None
    until: datetime | None = None


class AuditOut(BaseModel):
    items: list[dict[str, Any]]
    page: PageInfo


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": str(a.kind),
        "instance_id": a.instance_id,
        "tenant_id": a.tenant_id,
        "message": a.message,
        "details": a.details,
        "created_at": iso(a.created_at),
        "acknowledged_at": iso(a.acknowledged_at),
        "acknowledged_by": a.acknowledged_by,
        "occurrences": a.occurrences,
        "resolved_at": iso(a.resolved_at),
        "notified": a.notified,
        "notify_pending": a.notify_at is not None,
        "notify_error": a.notify_error,
    }


@bp.get("/api/alerts")
@tag(["alerts"])
@validate_querystring(AlertsQuery)
@validate_response(AlertsOut)
async def list_alerts(query_args: AlertsQuery):
    """Alerts, newest first; filters: kind, acknowledged, instance, tenant."""
    query = Alert.all()
    if query_args.acknowledged is not None:
        query = query.filter(acknowledged_at__isnull=not query_args.acknowledged)
    return await page_of(
        query,
        query_args,
        ("-created_at", "-id"),
        alert_json,
        equal=("kind", "instance_id", "tenant_id"),
    )


async def acknowledge_alert(alert_id: int, who: str, note: str | None = None) -> Alert | None:
    """Mark an alert as seen by `who` (acknowledging twice keeps the first)."""
    alert = await Alert.get_or_none(id=alert_id)
    if alert is None or alert.acknowledged_at is not None:
        return alert
    alert.acknowledged_at = datetime.now(UTC)
    alert.acknowledged_by = who
    await alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    await audit.record(
        who,
        "alert.acknowledged",
        "alert",
        alert.id,
        tenant_id=alert.tenant_id,
        before={"acknowledged_at": None},
        after={"acknowledged_at": iso(alert.acknowledged_at), "note": note},
    )
    return alert


@bp.post("/api/alerts/<int:alert_id>/acknowledge")
@tag(["alerts"])
@json_body(OptionalNote, optional=True)
@validate_response(AlertOut)
@validate_response(ErrorBody, 404)
async def acknowledge(alert_id: int, data: OptionalNote):
    """Acknowledge an alert (optional `note`, kept in the audit log)."""
    alert = await acknowledge_alert(alert_id, actor(), data.note)
    if alert is None:
        return error(404, "not_found", f"no alert {alert_id}")
    return alert_json(alert)


@bp.get("/api/audit")
@tag(["audit"])
@validate_querystring(AuditQuery)
@validate_response(AuditOut)
async def audit_log(query_args: AuditQuery):
    """The audit log, newest first: who did what to which object, before and after."""
    query = AuditLog.all()
    for name in ("actor", "target_type", "target_id", "tenant_id"):
        if (value := getattr(query_args, name)) is not None:
            query = query.filter(**{name: value})
    if query_args.action:
        if query_args.action.endswith("."):
            query = query.filter(action__startswith=query_args.action)
        else:
            query = query.filter(action=query_args.action)
    if query_args.since is not None:
        query = query.filter(at__gte=query_args.since)
    if query_args.until is not None:
        query = query.filter(at__lt=query_args.until)
    total = await query.count()
    rows = await query.order_by("-at", "-id").offset(query_args.offset).limit(query_args.limit)
    return {
        "items": [
            {
                "id": e.id,
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "tenant_id": e.tenant_id,
                "before": e.before,
                "after": e.after,
            }
            for e in rows
        ],
        "page": {"total": total, "limit": query_args.limit, "offset": query_args.offset},
    }

"""The operators' work queue (`/api/monitor/requests`); tenants' requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag, validate_querystring, validate_response
from tortoise.functions import Count, Min

from core import audit
from fleet.models import Alert, AlertKind
from shop.models import AdminRequest, AdminRequestKind, AdminRequestStatus, Order, Withdrawal
from shop.states import OrderStatus
from web.admin.api import (
    MAX_LIMIT,
    ErrorBody,
    PageInfo,
    PageQuery,
    Strict,
    actor,
    error,
    iso,
    json_body,
)
from web.admin.status import PENDING_WITHDRAWALS

bp = Blueprint("monitor", __name__)

WAITING_STOCK_AFTER = timedelta(hours=1)
QUEUE_ALERTS = (
    AlertKind.CRASHLOOP,
    AlertKind.AUTO_SUSPENDED,
    AlertKind.REPEATED_ERROR,
    AlertKind.NEGATIVE_BALANCE,
    AlertKind.FOREIGN_GUILD,
    AlertKind.WEBHOOK_FORGERY,
)
ItemType = Literal["request", "withdrawal", "waiting_stock", "alert"]


class Link(BaseModel):
    rel: str
    method: Literal["GET", "POST"]
    href: str
    body: dict[str, Any] | None = None


class QueueItem(BaseModel):
    type: ItemType
    id: str
    since: str
    age_s: float
    tenant_id: int | None = None
    summary: str
    detail: dict[str, Any] = Field(default_factory=dict)
    links: list[Link]


class QueueQuery(PageQuery):
    type: ItemType | None = None
    tenant_id: int | None = Field(None, ge=0, le=2**31 - 1)


class QueueOut(BaseModel):
    """Everything that waits for a person, oldest first."""

    items: list[QueueItem]
    counts: dict[str, int]
    page: PageInfo


class RequestOut(BaseModel):
    id: int
    kind: AdminRequestKind
    status: AdminRequestStatus
    tenant_id: int | None
    account_id: int | None
    subject: str
    body: str
    created_at: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolution_note: str | None


class RequestsQuery(PageQuery):
    status: AdminRequestStatus | None = None
    kind: AdminRequestKind | None = None
    tenant_id: int | None = Field(None, ge=0, le=2**31 - 1)


class RequestsOut(BaseModel):
    items: list[RequestOut]
    page: PageInfo


class ResolveIn(Strict):
    note: str = Field(min_length=1, max_length=2000)


def request_json(r: AdminRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": str(r.kind),
        "status": str(r.status),
        "tenant_id": r.tenant_id,
        "account_id": r.account_id,
        "subject": r.subject,
        "body": r.body,
        "created_at": iso(r.created_at),
        "resolved_at": iso(r.resolved_at),
        "resolved_by": r.resolved_by,
        "resolution_note": r.resolution_note,
    }


def _item(
    type_: str,
    id_: Any,
    since: datetime,
    summary: str,
    links: list[dict[str, Any]],
    tenant_id: int | None = None,
    **detail: Any,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "type": type_,
        "id": str(id_),
        "since": since.isoformat(),
        "age_s": round((now - since).total_seconds(), 1),
        "tenant_id": tenant_id,
        "summary": summary,
        "detail": detail,
        "links": links,
    }


def _request_links(r: AdminRequest) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = []
    if r.kind == AdminRequestKind.UNBLOCK_APPEAL:  # answered with a decision (web.admin.appeals)
        links.append(
            {
                "rel": "answer",
                "method": "POST",
                "href": f"/api/requests/{r.id}/answer",
                "body": {"decision": "unblock|keep_blocked", "message": "..."},
            }
        )
    links.append(
        {
            "rel": "resolve",
            "method": "POST",
            "href": f"/api/requests/{r.id}/resolve",
            "body": {"note": "..."},
        }
    )
    return links


async def _requests(tenant_id: int | None) -> list[dict[str, Any]]:
    query = AdminRequest.filter(status=AdminRequestStatus.OPEN)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    return [
        _item(
            "request",
            r.id,
            r.created_at,
            f"{r.kind}: {r.subject}",
            _request_links(r),
            r.tenant_id,
            kind=str(r.kind),
            account_id=r.account_id,
            body=r.body[:500],
        )
        for r in await query.order_by("created_at").limit(MAX_LIMIT * 2)
    ]


async def _withdrawals(tenant_id: int | None) -> list[dict[str, Any]]:
    query = Withdrawal.filter(status__in=PENDING_WITHDRAWALS)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    items = []
    for w in await query.order_by("requested_at").limit(MAX_LIMIT * 2):
        base = f"/api/withdrawals/{w.id}"
        links: list[dict[str, Any]] = (
            [{"rel": "approve", "method": "POST", "href": f"{base}/approve"}]
            if w.status == "requested"
            else [
                {
                    "rel": "complete",
                    "method": "POST",
                    "href": f"{base}/complete",
                    "body": {"e2e_id": "E..."},
                }
            ]
        )
        links.append(
            {"rel": "reject", "method": "POST", "href": f"{base}/reject", "body": {"reason": "..."}}
        )
        items.append(
            _item(
                "withdrawal",
                w.id,
                w.requested_at,
                f"withdrawal {w.status}: {w.amount_cents} centavos",
                links,
                w.tenant_id,
                status=str(w.status),
                amount_cents=w.amount_cents,
            )
        )
    return items


async def _waiting_stock(tenant_id: int | None) -> list[dict[str, Any]]:
    """Orders paid but waiting for stock for over an hour, one item per (tenant, product)."""
    cutoff = datetime.now(UTC) - WAITING_STOCK_AFTER
    query = Order.filter(status=OrderStatus.WAITING_STOCK, paid_at__lte=cutoff)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    rows = (
        await query.annotate(count=Count("id"), oldest=Min("paid_at"))
        .group_by("tenant_id", "product_id")
        .values("tenant_id", "product_id", "count", "oldest")
    )
    items = []
    for row in rows:
        tid, pid, oldest = row["tenant_id"], row["product_id"], row["oldest"]
        if isinstance(oldest, str):  # SQLite returns aggregates of datetimes as text
            oldest = datetime.fromisoformat(oldest)
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        items.append(
            _item(
                "waiting_stock",
                f"{tid}:{pid}",
                oldest,
                f"{row['count']} order(s) waiting for stock of product {pid}",
                [
                    {
                        "rel": "retry",
                        "method": "POST",
                        "href": "/api/orders/retry-waiting-stock",
                        "body": {"tenant_id": tid, "product_id": pid},
                    },
                    {
                        "rel": "orders",
                        "method": "GET",
                        "href": "/api/orders?status=waiting_stock"
                        f"&tenant_id={tid}&product_id={pid}",
                    },
                ],
                tid,
                product_id=pid,
                orders=row["count"],
            )
        )
    return items


async def _alerts(tenant_id: int | None) -> list[dict[str, Any]]:
    query = Alert.filter(acknowledged_at__isnull=True, kind__in=QUEUE_ALERTS)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    items = []
    for a in await query.order_by("created_at").limit(MAX_LIMIT * 2):
        links: list[dict[str, Any]] = [
            {"rel": "acknowledge", "method": "POST", "href": f"/api/alerts/{a.id}/acknowledge"}
        ]
        if a.instance_id is not None:
            base = f"/api/instances/{a.instance_id}"
            links += [
                {"rel": "instance", "method": "GET", "href": base},
                {"rel": "restart", "method": "POST", "href": f"{base}/restart"},
                {
                    "rel": "suspend",
                    "method": "POST",
                    "href": f"{base}/suspend",
                    "body": {"reason": "..."},
                },
            ]
        items.append(
            _item(
                "alert",
                a.id,
                a.created_at,
                f"{a.kind}: {a.message}",
                links,
                a.tenant_id,
                kind=str(a.kind),
                instance_id=a.instance_id,
            )
        )
    return items


SOURCES = {
    "request": _requests,
    "withdrawal": _withdrawals,
    "waiting_stock": _waiting_stock,
    "alert": _alerts,
}


async def work_queue(type_: str | None = None, tenant_id: int | None = None) -> list[dict]:
    """Every item that needs a person, oldest first."""
    items: list[dict[str, Any]] = []
    for name, source in SOURCES.items():
        if type_ in (None, name):
            items += await source(tenant_id)
    items.sort(key=lambda i: i["since"])
    return items


@bp.get("/api/monitor/requests")
@tag(["monitor"])
@validate_querystring(QueueQuery)
@validate_response(QueueOut)
async def monitor_requests(query_args: QueueQuery):
    """The work queue: open tenant requests, pending withdrawals, orders waiting for stock
    over an hour and unacknowledged crash-loop/error alerts, oldest first, with links to act."""
    items = await work_queue(query_args.type, query_args.tenant_id)
    counts = {name: sum(1 for i in items if i["type"] == name) for name in SOURCES}
    page = items[query_args.offset : query_args.offset + query_args.limit]
    return {
        "items": page,
        "counts": counts,
        "page": {"total": len(items), "limit": query_args.limit, "offset": query_args.offset},
    }


@bp.get("/api/requests")
@tag(["monitor"])
@validate_querystring(RequestsQuery)
@validate_response(RequestsOut)
async def list_requests(query_args: RequestsQuery):
    """Tenants' requests (instance review, unblock appeals, support), oldest first."""
    query = AdminRequest.all()
    for name in ("status", "kind", "tenant_id"):
        if (value := getattr(query_args, name)) is not None:
            query = query.filter(**{name: value})
    total = await query.count()
    rows = (
        await query.order_by("created_at", "id").offset(query_args.offset).limit(query_args.limit)
    )
    return {
        "items": [request_json(r) for r in rows],
        "page": {"total": total, "limit": query_args.limit, "offset": query_args.offset},
    }


async def resolve_request(request_id: int, note: str, who: str) -> AdminRequest | None:
    """Close a tenant's request with a note (idempotent: resolving twice keeps the first)."""
    req = await AdminRequest.get_or_none(id=request_id)
    if req is None or req.status == AdminRequestStatus.RESOLVED:
        return req
    before = {"status": str(req.status)}
    req.status = AdminRequestStatus.RESOLVED
    req.resolved_at = datetime.now(UTC)
    req.resolved_by = who
    req.resolution_note = note
    await req.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
    await audit.record(
        who,
        "request.resolved",
        "admin_request",
        req.id,
        tenant_id=req.tenant_id,
        before=before,
        after={"status": str(req.status), "note": note},
    )
    return req


@bp.post("/api/requests/<int:request_id>/resolve")
@tag(["monitor"])
@json_body(ResolveIn)
@validate_response(RequestOut)
@validate_response(ErrorBody, 404)
async def resolve(request_id: int, data: ResolveIn):
    """Resolve a tenant's request with a note (shown to the tenant)."""
    req = await resolve_request(request_id, data.note.strip() or data.note, actor())
    if req is None:
        return error(404, "not_found", f"no request {request_id}")
    return request_json(req)

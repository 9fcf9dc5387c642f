"""Support tickets per store for operators (issue 17): `GET /api/indicators/tickets`, how many
each store opened in the period, how many are open now, and the median first-response time."""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag, validate_querystring, validate_response

from shop import tickets
from web.admin.indicators import PERIODS, Period

bp = Blueprint("ticket_indicators", __name__)


class TicketsQuery(BaseModel):
    period: Period = "30d"
    limit: int = Field(100, ge=1, le=1000)


class StoreTicketsOut(BaseModel):
    tenant_id: int
    opened: int
    open_now: int
    median_first_response_s: float | None


class TicketsOut(BaseModel):
    period: str
    stores: list[StoreTicketsOut]


@bp.get("/api/indicators/tickets")
@tag(["indicators"])
@validate_querystring(TicketsQuery)
@validate_response(TicketsOut)
async def ticket_indicators(query_args: TicketsQuery):
    """Tickets per store over `period` (most opened first, at most `limit` stores)."""
    rows = await tickets.per_store(PERIODS[query_args.period], query_args.limit)
    return {"period": query_args.period, "stores": [vars(r) for r in rows]}

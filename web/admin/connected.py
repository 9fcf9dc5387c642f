"""Seller-connected Mercado Pago accounts for operators (issue 20): the charges paid into
sellers' own accounts (no ledger entries exist for them) and their indicators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import tag, validate_querystring, validate_response

from shop.models import ConnectedCharge, MoneyMode, MPConnection
from shop.payments.connected_report import connected_totals
from web.admin.api import MAX_ID, iso
from web.admin.transactions import Rows, TxQuery

bp = Blueprint("connected", __name__)

CONNECTED_COLUMNS = [
    "payment_id",
    "tenant_id",
    "order_id",
    "provider_payment_id",
    "mp_user_id",
    "status",
    "amount_cents",
    "fee_cents",
    "refunded_cents",
    "created_at",
    "sold_at",
]
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


class ConnectedQuery(TxQuery):
    mp_user_id: str | None = Field(None, max_length=32, pattern=r"^\d+$")


class ConnectedIndicatorsQuery(BaseModel):
    period: Literal["24h", "7d", "30d"] = "24h"
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)


class ConnectedIndicatorsOut(BaseModel):
    period: str
    stores_connected: int
    refresh_failing: int
    sales: int
    gross_cents: int
    fee_cents: int
    refunded_cents: int


def _row(charge: ConnectedCharge) -> dict[str, Any]:
    payment = charge.payment
    return {
        "payment_id": str(charge.payment_id),
        "tenant_id": charge.tenant_id,
        "order_id": payment.order_id,
        "provider_payment_id": payment.provider_payment_id,
        "mp_user_id": charge.mp_user_id,
        "status": str(payment.status),
        "amount_cents": charge.amount_cents,
        "fee_cents": charge.fee_cents,
        "refunded_cents": payment.refunded_cents,
        "created_at": iso(charge.created_at),
        "sold_at": iso(charge.sold_at),
    }


@bp.get("/api/transactions/connected")
@tag(["transactions"])
@validate_querystring(ConnectedQuery)
@validate_response(Rows)
async def tx_connected(query_args: ConnectedQuery):
    """Charges paid into connected sellers' own Mercado Pago accounts (marketplace fee to the
    platform; no ledger entries), oldest first; filters: tenant, order, seller account, period."""
    query = ConnectedCharge.all()
    args = query_args
    if args.tenant_id is not None:
        query = query.filter(tenant_id=args.tenant_id)
    if args.order_id is not None:
        query = query.filter(payment__order_id=args.order_id)
    if args.mp_user_id:
        query = query.filter(mp_user_id=args.mp_user_id)
    if args.since is not None:
        query = query.filter(created_at__gte=args.since)
    if args.until is not None:
        query = query.filter(created_at__lt=args.until)
    total = await query.count()
    rows = (
        await query.order_by("id").offset(args.offset).limit(args.limit).prefetch_related("payment")
    )
    return {
        "items": [_row(c) for c in rows],
        "columns": CONNECTED_COLUMNS,
        "page": {"total": total, "limit": args.limit, "offset": args.offset},
    }


@bp.get("/api/indicators/connected")
@tag(["indicators"])
@validate_querystring(ConnectedIndicatorsQuery)
@validate_response(ConnectedIndicatorsOut)
async def connected_indicators(query_args: ConnectedIndicatorsQuery):
    """Connected stores now, token refreshes failing, and their sales in the period: gross
    (paid to the sellers) and the marketplace fee the platform earned."""
    since = datetime.now(UTC) - PERIODS[query_args.period]
    live = MPConnection.filter(money_mode=MoneyMode.CONNECTED, disconnected_at__isnull=True)
    if query_args.tenant_id is not None:
        live = live.filter(tenant_id=query_args.tenant_id)
    totals = await connected_totals(query_args.tenant_id, since)
    return {
        "period": query_args.period,
        "stores_connected": await live.count(),
        "refresh_failing": await live.exclude(refresh_error="").count(),
        "sales": totals.sales,
        "gross_cents": totals.gross_cents,
        "fee_cents": totals.fee_cents,
        "refunded_cents": totals.refunded_cents,
    }

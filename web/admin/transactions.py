"""Transactions audit: payments, ledger entries and withdrawals, filtered, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, Response
from quart_schema import tag, validate_querystring, validate_response

from shop.models import LedgerEntry, Payment, Withdrawal
from shop.states import PaymentStatus, WithdrawalStatus
from web.admin.api import MAX_ID, PageInfo, PageQuery, iso
from web.common import csv_safe

bp = Blueprint("transactions", __name__)

CSV_MAX_ROWS = 50_000
CSV_MEDIA_TYPE = "text/csv"


class TxQuery(PageQuery):
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)
    order_id: int | None = Field(None, ge=0, le=MAX_ID)
    since: datetime | None = Field(None, description="at or after (ISO 8601)")
    until: datetime | None = Field(None, description="before (ISO 8601)")


class PaymentsQuery(TxQuery):
    status: PaymentStatus | None = None


class LedgerQuery(TxQuery):
    account: str | None = Field(None, max_length=60, description="e.g. seller:12, platform:fees")
    kind: str | None = Field(None, max_length=24)
    withdrawal_id: int | None = Field(None, ge=0, le=MAX_ID)


class WithdrawalsQuery(TxQuery):
    status: WithdrawalStatus | None = None


CSV_LIMIT = Field(CSV_MAX_ROWS, ge=1, le=CSV_MAX_ROWS)
CSV_OFFSET = Field(0, ge=0, le=10_000_000)


class PaymentsCsvQuery(PaymentsQuery):
    limit: int = CSV_LIMIT
    offset: int = CSV_OFFSET


class LedgerCsvQuery(LedgerQuery):
    limit: int = CSV_LIMIT
    offset: int = CSV_OFFSET


class WithdrawalsCsvQuery(WithdrawalsQuery):
    limit: int = CSV_LIMIT
    offset: int = CSV_OFFSET


class Rows(BaseModel):
    items: list[dict[str, Any]]
    columns: list[str]
    page: PageInfo


PAYMENT_COLUMNS = [
    "id",
    "tenant_id",
    "order_id",
    "cart_id",  # a cart's one payment (its order_id is the cart's lead line)
    "provider_payment_id",
    "status",
    "status_detail",
    "amount_cents",
    "refunded_cents",
    "created_at",
    "approved_at",
    "updated_at",
]
LEDGER_COLUMNS = [
    "id",
    "created_at",
    "txn_id",
    "idempotency_key",
    "account",
    "tenant_id",
    "amount_cents",
    "kind",
    "order_id",
    "withdrawal_id",
    "available_at",
    "memo",
]
WITHDRAWAL_COLUMNS = [
    "id",
    "tenant_id",
    "amount_cents",
    "status",
    "pix_key_type",
    "requested_at",
    "processing_at",
    "completed_at",
    "rejected_at",
    "failed_at",
    "transfer_id",
    "reason",
    "acted_by",
]


def _row(obj: Any, columns: list[str]) -> dict[str, Any]:
    row = {}
    for name in columns:
        value = getattr(obj, name)
        if isinstance(value, datetime):
            value = iso(value)
        elif value is not None and not isinstance(value, int | str | bool):
            value = str(value)  # UUIDs and enums
        row[name] = value
    return row


def _payments(args: PaymentsQuery):
    query = Payment.all()
    if args.status is not None:
        query = query.filter(status=args.status)
    return query, "created_at"


def _ledger(args: LedgerQuery):
    query = LedgerEntry.all()
    for name in ("account", "kind", "withdrawal_id"):
        if (value := getattr(args, name)) is not None:
            query = query.filter(**{name: value})
    return query, "created_at"


def _withdrawals(args: WithdrawalsQuery):
    query = Withdrawal.all()
    if args.status is not None:
        query = query.filter(status=args.status)
    if args.order_id is not None:  # withdrawals have no order: nothing matches
        query = query.filter(id=-1)
    return query, "requested_at"


KINDS: dict[str, tuple[Callable, list[str]]] = {
    "payments": (_payments, PAYMENT_COLUMNS),
    "ledger": (_ledger, LEDGER_COLUMNS),
    "withdrawals": (_withdrawals, WITHDRAWAL_COLUMNS),
}


async def select(kind: str, args: TxQuery) -> tuple[list[dict[str, Any]], int]:
    """Rows of one kind (oldest first, so an export reads like a statement) and the total."""
    build, columns = KINDS[kind]
    query, stamp = build(args)
    if args.tenant_id is not None:
        query = query.filter(tenant_id=args.tenant_id)
    if args.order_id is not None and kind != "withdrawals":
        query = query.filter(order_id=args.order_id)
    if args.since is not None:
        query = query.filter(**{f"{stamp}__gte": args.since})
    if args.until is not None:
        query = query.filter(**{f"{stamp}__lt": args.until})
    total = await query.count()
    rows = await query.order_by(stamp, "id").offset(args.offset).limit(args.limit)
    return [_row(r, columns) for r in rows], total


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    # RFC 4180 line ends: with "\n" alone the writer leaves a CR inside a cell unquoted, and a
    # spreadsheet starts a new row (whose first cell could be a formula) at it.
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
    return out.getvalue()


async def _json(kind: str, args: TxQuery) -> dict[str, Any]:
    rows, total = await select(kind, args)
    return {
        "items": rows,
        "columns": KINDS[kind][1],
        "page": {"total": total, "limit": args.limit, "offset": args.offset},
    }


async def _csv(kind: str, args: TxQuery) -> Response:
    rows, _total = await select(kind, args)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Response(
        to_csv(KINDS[kind][1], rows),
        mimetype=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="vitrine-{kind}-{stamp}.csv"'},
    )


@bp.get("/api/transactions/payments")
@tag(["transactions"])
@validate_querystring(PaymentsQuery)
@validate_response(Rows)
async def tx_payments(query_args: PaymentsQuery):
    """Payments (PIX charges), oldest first; filters: tenant, order, status, period."""
    return await _json("payments", query_args)


@bp.get("/api/transactions/ledger")
@tag(["transactions"])
@validate_querystring(LedgerQuery)
@validate_response(Rows)
async def tx_ledger(query_args: LedgerQuery):
    """Ledger entries, oldest first; filters: tenant, account, kind, order, withdrawal, period."""
    return await _json("ledger", query_args)


@bp.get("/api/transactions/withdrawals")
@tag(["transactions"])
@validate_querystring(WithdrawalsQuery)
@validate_response(Rows)
async def tx_withdrawals(query_args: WithdrawalsQuery):
    """Withdrawals, oldest first; filters: tenant, status, period (by requested_at)."""
    return await _json("withdrawals", query_args)


@bp.get("/api/transactions/payments.csv")
@tag(["transactions"])
@validate_querystring(PaymentsCsvQuery)
async def tx_payments_csv(query_args: PaymentsCsvQuery):
    """Payments as CSV (same filters; up to 50 000 rows per file, page with offset)."""
    return await _csv("payments", query_args)


@bp.get("/api/transactions/ledger.csv")
@tag(["transactions"])
@validate_querystring(LedgerCsvQuery)
async def tx_ledger_csv(query_args: LedgerCsvQuery):
    """Ledger entries as CSV (same filters; up to 50 000 rows per file)."""
    return await _csv("ledger", query_args)


@bp.get("/api/transactions/withdrawals.csv")
@tag(["transactions"])
@validate_querystring(WithdrawalsCsvQuery)
async def tx_withdrawals_csv(query_args: WithdrawalsCsvQuery):
    """Withdrawals as CSV (same filters; up to 50 000 rows per file)."""
    return await _csv("withdrawals", query_args)

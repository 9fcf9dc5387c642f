"""Money: balance (available vs on hold), ledger with filters and CSV, withdrawals (saques)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from quart import Blueprint, Response, g, redirect, request, url_for

from shop import inputs, ledger
from shop.errors import ShopError
from shop.models import LedgerEntry, Withdrawal
from shop.payments.connected_report import connected_money
from shop.pix_keys import PixKeyType
from shop.withdrawals import request_withdrawal
from web.common import csv_safe
from web.portal.context import _, actor, owned, render, say, store_required
from web.portal.dashboard import BRT

bp = Blueprint("money", __name__)

LEDGER_PAGE = 100
CSV_MAX_ROWS = 50_000
KINDS = ("sale", "refund", "chargeback", "withdrawal", "withdrawal_return")


def _ledger_query() -> tuple[Any, dict[str, str]]:
    args = request.args
    shown = {k: (args.get(k) or "").strip() for k in ("kind", "from", "to")}
    qs = LedgerEntry.filter(tenant_id=g.tenant.id, account=ledger.seller_account(g.tenant.id))
    if shown["kind"]:
        qs = qs.filter(kind=shown["kind"][:24])
    for name, op in (("from", "gte"), ("to", "lt")):
        try:
            day = datetime.strptime(shown[name], "%Y-%m-%d").replace(tzinfo=BRT)
        except ValueError:
            shown[name] = ""
            continue
        if name == "to":
            day += timedelta(days=1)
        qs = qs.filter(**{f"created_at__{op}": day})
    return qs, shown


async def _page(form: dict[str, str] | None = None, error: str | None = None, status: int = 200):
    qs, shown = _ledger_query()
    page = inputs.page_number(request.args.get("page"))
    entries = await qs.order_by("-id").offset((page - 1) * LEDGER_PAGE).limit(LEDGER_PAGE)
    withdrawals = await Withdrawal.filter(tenant_id=g.tenant.id).order_by("-id").limit(50)
    return await render(
        "portal/money.html",
        status=status,
        balance=await ledger.balance(g.tenant.id),
        entries=entries,
        shown=shown,
        page=page,
        kinds=KINDS,
        withdrawals=withdrawals,
        connected=await connected_money(g.tenant.id),
        form=form or {},
        error=error,
        key_types=[k.value for k in PixKeyType],
    )


@bp.get("/money")
@store_required
async def money():
    return await _page()


@bp.get("/money/ledger.csv")
@store_required
async def ledger_csv():
    qs, _shown = _ledger_query()
    rows = await qs.order_by("id").limit(CSV_MAX_ROWS)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")  # what Brazilian spreadsheets open by default
    writer.writerow(
        [
            "id",
            "data",
            "tipo",
            "valor_centavos",
            "valor",
            "disponivel_em",
            "pedido",
            "saque",
            "descricao",
        ]
    )
    for e in rows:
        writer.writerow(
            [
                e.id,
                e.created_at.astimezone(BRT).isoformat(),
                e.kind,
                e.amount_cents,
                f"{e.amount_cents / 100:.2f}".replace(".", ","),
                e.available_at.astimezone(BRT).isoformat(),
                e.order_id or "",
                e.withdrawal_id or "",
                csv_safe(e.memo),
            ]
        )
    name = f"extrato-loja-{g.tenant.id}-{datetime.now(BRT):%Y%m%d}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/money/withdrawals")
@store_required
async def withdraw():
    form = await request.form
    data = {k: (form.get(k) or "").strip() for k in ("amount", "pix_key", "pix_key_type")}
    try:
        amount = inputs.parse_money(data["amount"], min_cents=1)
    except inputs.InvalidInput as refusal:
        message = (
            _("portal.money.bad_amount")
            if refusal.reason in ("too_small", "not_a_number")
            else refusal.message(g.locale)
        )
        return await _page(data, message, 400)
    if not data["pix_key"]:
        return await _page(data, _("portal.error.required"), 400)
    key_type = (
        data["pix_key_type"] if data["pix_key_type"] in {k.value for k in PixKeyType} else None
    )
    try:
        withdrawal = await request_withdrawal(
            g.tenant.id, amount, data["pix_key"], actor(), pix_key_type=key_type
        )
    except ShopError as exc:
        return await _page(data, exc.message(g.locale), 400)
    await say("portal.money.requested", id=withdrawal.id)
    return redirect(url_for("money.money"))


@bp.get("/money/withdrawals/<int:withdrawal_id>")
@store_required
async def withdrawal_detail(withdrawal_id: int):
    withdrawal = await owned(Withdrawal, withdrawal_id)
    entries = await LedgerEntry.filter(withdrawal_id=withdrawal.id, tenant_id=g.tenant.id).order_by(
        "id"
    )
    return await render("portal/withdrawal.html", withdrawal=withdrawal, entries=entries)

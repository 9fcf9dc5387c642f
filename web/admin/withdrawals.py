"""Admin withdrawals API: list, approve (→ processing), complete, reject; seller balances."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, jsonify, request

from shop import ledger
from shop.models import Tenant, Withdrawal
from shop.states import WithdrawalStatus
from shop.withdrawals import approve_withdrawal, complete_withdrawal, reject_withdrawal
from web.admin.api import query_id

bp = Blueprint("admin_withdrawals", __name__)
REASON_MAX = 1000  # like every other admin reason (web.admin.api.ActionReason)


def withdrawal_json(w: Withdrawal) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": w.id, "tenant_id": w.tenant_id, "amount_cents": w.amount_cents,
        "pix_key_type": w.pix_key_type, "pix_key": w.pix_key, "status": str(w.status),
        "requested_at": iso(w.requested_at), "processing_at": iso(w.processing_at),
        "completed_at": iso(w.completed_at), "rejected_at": iso(w.rejected_at),
        "reason": w.reason, "transfer_id": w.transfer_id, "acted_by": w.acted_by,
    }


async def _json_body() -> dict[str, Any]:
    body = await request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


@bp.get("/api/withdrawals")
async def list_withdrawals():  # type: ignore[no-untyped-def]
    """Oldest first (the work queue); filters: status, tenant_id."""
    query = Withdrawal.all().order_by("requested_at")
    if status := request.args.get("status"):
        if status not in {s.value for s in WithdrawalStatus}:
            return jsonify({"error": "bad_request", "message": f"unknown status {status}"}), 400
        query = query.filter(status=status)
    if (tenant_id := query_id("tenant_id")) is not None:
        query = query.filter(tenant_id=tenant_id)
    return jsonify({"withdrawals": [withdrawal_json(w) for w in await query.limit(500)]})


@bp.post("/api/withdrawals/<int:withdrawal_id>/approve")
async def approve(withdrawal_id: int):  # type: ignore[no-untyped-def]
    return jsonify(withdrawal_json(await approve_withdrawal(withdrawal_id, g.actor)))


@bp.post("/api/withdrawals/<int:withdrawal_id>/complete")
async def complete(withdrawal_id: int):  # type: ignore[no-untyped-def]
    transfer_id = (await _json_body()).get("transfer_id")
    w = await complete_withdrawal(withdrawal_id, g.actor,
                                  str(transfer_id)[:100] if transfer_id else None)
    return jsonify(withdrawal_json(w))


@bp.post("/api/withdrawals/<int:withdrawal_id>/reject")
async def reject(withdrawal_id: int):  # type: ignore[no-untyped-def]
    reason = str((await _json_body()).get("reason") or "").strip()
    if not reason or len(reason) > REASON_MAX:
        return jsonify({"error": "bad_request",
                        "message": f"a reason (1–{REASON_MAX} characters) is required to "
                                   "reject a withdrawal"}), 400
    return jsonify(withdrawal_json(await reject_withdrawal(withdrawal_id, g.actor, reason)))


@bp.get("/api/tenants/<int:tenant_id>/balance")
async def tenant_balance(tenant_id: int):  # type: ignore[no-untyped-def]
    """The seller's balance: total, available (past the hold), on hold, withdrawable."""
    if not await Tenant.exists(id=tenant_id):
        return jsonify({"error": "not_found", "message": f"no tenant {tenant_id}"}), 404
    bal = await ledger.balance(tenant_id)
    return jsonify({"tenant_id": tenant_id, "total_cents": bal.total_cents,
                    "available_cents": bal.available_cents,
                    "on_hold_cents": bal.on_hold_cents,
                    "withdrawable_cents": bal.withdrawable_cents})

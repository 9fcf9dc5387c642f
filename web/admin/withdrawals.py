"""Admin withdrawals API: list, approve (→ processing), complete, reject; seller balances."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator
from quart import Blueprint, current_app, g, jsonify
from quart_schema import tag, validate_querystring

from shop import ledger
from shop.models import Payout, Tenant, Withdrawal
from shop.payout_listing import payouts_by_withdrawal
from shop.payouts import approve as approve_for_payout
from shop.payouts import payout_json
from shop.pix_proof import InvalidEndToEndId, parse_e2e_id
from shop.states import WithdrawalStatus
from shop.withdrawals import complete_withdrawal, reject_withdrawal
from web.admin.api import MAX_ID, BlankIsAbsent, Strict, json_body

bp = Blueprint("admin_withdrawals", __name__)
REASON_MAX = 1000  # like every other admin reason (web.admin.api.ActionReason)
TRANSFER_ID_MAX = 100
LIST_MAX = 500


class WithdrawalsQuery(BlankIsAbsent):
    """`GET /api/withdrawals`: oldest first, at most 500."""

    status: WithdrawalStatus | None = None
    tenant_id: int | None = Field(None, ge=0, le=MAX_ID)


class CompleteBody(Strict):
    """The proof of payment: `e2e_id`, the PIX end-to-end id from the transfer's receipt
    (checked: `shop.pix_proof`); `transfer_id` is free text kept for older callers."""

    transfer_id: str | None = Field(
        None, max_length=TRANSFER_ID_MAX, description="free-text transfer reference (legacy)"
    )
    e2e_id: str | None = Field(
        None,
        max_length=40,
        description="the PIX end-to-end id (32 characters: E + ISPB + yyyyMMddHHmm + 11)",
    )

    @field_validator("e2e_id")
    @classmethod
    def _e2e(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_e2e_id(value)
        except InvalidEndToEndId as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _one_proof(self) -> CompleteBody:
        if self.e2e_id and self.transfer_id:
            raise ValueError("send e2e_id or transfer_id, not both")
        return self


class RejectBody(Strict):
    """The reason is kept without surrounding blanks; blanks alone are no reason."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=REASON_MAX)


def withdrawal_json(w: Withdrawal) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": w.id,
        "tenant_id": w.tenant_id,
        "amount_cents": w.amount_cents,
        "pix_key_type": w.pix_key_type,
        "pix_key": w.pix_key,
        "status": str(w.status),
        "requested_at": iso(w.requested_at),
        "processing_at": iso(w.processing_at),
        "completed_at": iso(w.completed_at),
        "rejected_at": iso(w.rejected_at),
        "failed_at": iso(w.failed_at),
        "reason": w.reason,
        "transfer_id": w.transfer_id,
        "acted_by": w.acted_by,
    }


@bp.get("/api/withdrawals")
@tag(["withdrawals"])
@validate_querystring(WithdrawalsQuery)
async def list_withdrawals(query_args: WithdrawalsQuery):
    """Oldest first (the work queue); filters: status, tenant_id. Each row carries its
    automatic payout (`payout`, as `GET /api/withdrawals/{id}/payout`; null when paid by hand)."""
    query = Withdrawal.all().order_by("requested_at")
    for name in ("status", "tenant_id"):
        if (value := getattr(query_args, name)) is not None:
            query = query.filter(**{name: value})
    rows = await query.limit(LIST_MAX)
    payouts = await payouts_by_withdrawal(w.id for w in rows)
    return jsonify(
        {
            "withdrawals": [
                {**withdrawal_json(w), "payout": _payout_or_none(w, payouts.get(w.id))}
                for w in rows
            ]
        }
    )


def _payout_or_none(w: Withdrawal, payout: Payout | None) -> dict[str, Any] | None:
    return payout_json(w, payout) if payout is not None else None


@bp.post("/api/withdrawals/<int:withdrawal_id>/approve")
@tag(["withdrawals"])
async def approve(withdrawal_id: int):
    """`requested` → `processing`; with PAYOUT_MODE=automatic the platform sends the PIX
    (see `GET /api/withdrawals/{id}/payout`)."""
    automatic = current_app.config["VITRINE_SETTINGS"].payouts_automatic
    w = await approve_for_payout(withdrawal_id, g.actor, automatic=automatic)
    return jsonify(withdrawal_json(w))


@bp.post("/api/withdrawals/<int:withdrawal_id>/complete")
@tag(["withdrawals"])
@json_body(CompleteBody, optional=True)
async def complete(withdrawal_id: int, data: CompleteBody):
    """`processing` → `completed`, with the PIX end-to-end id (`e2e_id`) as proof."""
    w = await complete_withdrawal(withdrawal_id, g.actor, data.e2e_id or data.transfer_id or None)
    return jsonify(withdrawal_json(w))


@bp.post("/api/withdrawals/<int:withdrawal_id>/reject")
@tag(["withdrawals"])
@json_body(RejectBody)
async def reject(withdrawal_id: int, data: RejectBody):
    """The amount returns to the seller's balance; the reason is required."""
    return jsonify(withdrawal_json(await reject_withdrawal(withdrawal_id, g.actor, data.reason)))


@bp.get("/api/tenants/<int:tenant_id>/balance")
@tag(["withdrawals"])
async def tenant_balance(tenant_id: int):
    """The seller's balance: total, available (past the hold), on hold, withdrawable."""
    if not await Tenant.exists(id=tenant_id):
        return jsonify({"error": "not_found", "message": f"no tenant {tenant_id}"}), 404
    bal = await ledger.balance(tenant_id)
    return jsonify(
        {
            "tenant_id": tenant_id,
            "total_cents": bal.total_cents,
            "available_cents": bal.available_cents,
            "on_hold_cents": bal.on_hold_cents,
            "withdrawable_cents": bal.withdrawable_cents,
        }
    )

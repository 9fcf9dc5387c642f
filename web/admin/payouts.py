"""Admin API for automatic payouts (issue 20): a withdrawal's payout, and what to do with a
failed one: send it again (`retry`) or leave it to an operator (`manual`)."""

from __future__ import annotations

from quart import Blueprint, current_app, g, jsonify
from quart_schema import tag

from shop.errors import AutomaticPayoutsOff, WithdrawalNotFound
from shop.models import Payout, Withdrawal
from shop.payouts import payout_json, retry_payout
from web.admin.withdrawals import withdrawal_json

bp = Blueprint("admin_payouts", __name__)


@bp.get("/api/withdrawals/<int:withdrawal_id>/payout")
@tag(["withdrawals"])
async def show_payout(withdrawal_id: int):
    """The payout: `mode` (automatic or manual), status, Mercado Pago's id and status, the
    PIX end-to-end id, attempts, the last error and when it is checked next."""
    w = await Withdrawal.get_or_none(id=withdrawal_id)
    if w is None:
        raise WithdrawalNotFound(f"withdrawal {withdrawal_id} does not exist")
    payout = await Payout.get_or_none(withdrawal_id=w.id)
    return jsonify({**payout_json(w, payout), "withdrawal_status": str(w.status)})


@bp.post("/api/withdrawals/<int:withdrawal_id>/retry")
@tag(["withdrawals"])
async def retry(withdrawal_id: int):
    """A `failed` payout sent again as a new withdrawal (same amount and PIX key, debited
    again from the balance the failure restored); answers the new withdrawal."""
    if not current_app.config["VITRINE_SETTINGS"].payouts_automatic:
        raise AutomaticPayoutsOff("PAYOUT_MODE is manual: use `manual` and pay it by hand")
    new = await retry_payout(withdrawal_id, g.actor, manual=False)
    return jsonify({**withdrawal_json(new), "retry_of": withdrawal_id})


@bp.post("/api/withdrawals/<int:withdrawal_id>/manual")
@tag(["withdrawals"])
async def manual(withdrawal_id: int):
    """A `failed` payout paid by hand instead: a new withdrawal, `processing`, that an
    operator completes with the PIX end-to-end id (`complete`)."""
    new = await retry_payout(withdrawal_id, g.actor, manual=True)
    return jsonify({**withdrawal_json(new), "retry_of": withdrawal_id})

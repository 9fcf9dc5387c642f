"""Answering a blocked seller's unblock appeal (`POST /api/requests/{id}/answer`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import tag, validate_response

from shop.appeals import ANSWER_MAX, AppealDecision, AppealNotFound, answer_appeal
from shop.models import Account
from web.admin.accounts import set_blocked
from web.admin.api import ErrorBody, Strict, actor, error, json_body
from web.admin.monitor import RequestOut, request_json

bp = Blueprint("appeals", __name__)


class AnswerIn(Strict):
    decision: AppealDecision = Field(description="unblock, or keep_blocked")
    message: str = Field(
        min_length=1, max_length=ANSWER_MAX, description="shown to the seller in the portal"
    )


class AnswerOut(RequestOut):
    decision: AppealDecision
    account_blocked: bool | None


async def answer(request_id: int, decision: AppealDecision, message: str, who: str) -> Any:
    """Resolve the appeal, then lift the block when the decision says so (audited twice:
    `appeal.answered` and `account.unblocked`)."""
    try:
        req = await answer_appeal(request_id, decision, message, who)
    except AppealNotFound:
        return error(404, "not_found", f"no unblock appeal {request_id}")
    blocked = None
    if req.account_id is not None:
        if decision == AppealDecision.UNBLOCK:
            body = await set_blocked(
                req.account_id, False, f"appeal #{req.id}: {req.resolution_note}", who
            )
            blocked = None if body is None else body["blocked"]
        else:
            account = await Account.get_or_none(id=req.account_id)
            blocked = None if account is None else account.blocked
    return {**request_json(req), "decision": str(decision), "account_blocked": blocked}


@bp.post("/api/requests/<int:request_id>/answer")
@tag(["monitor"])
@json_body(AnswerIn)
@validate_response(AnswerOut)
@validate_response(ErrorBody, 404)
async def answer_route(request_id: int, data: AnswerIn):
    """Answer an unblock appeal: `unblock` lifts the block (the seller's bots may start
    again) or `keep_blocked`; the message reaches the seller on the portal's blocked page."""
    return await answer(request_id, data.decision, data.message, actor())

"""Unblock appeals: a blocked seller asks the operators to lift the block; an operator answers.

An appeal is an `AdminRequest` of kind `unblock_appeal` (so it sits in the operators' work
queue with every other request). One open appeal per account at a time; the text is bounded.
The answer (unblock, or keep blocked, with a message for the seller) resolves the request and
is audited as `appeal.answered`; lifting the block itself is the caller's
(`web.admin.accounts.set_blocked`, which also restarts the seller's bots).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tortoise.transactions import in_transaction

from core import audit
from core.models import AuditLog
from shop.errors import InvalidStateChange, ShopError
from shop.models import Account, AdminRequest, AdminRequestKind, AdminRequestStatus, Tenant

APPEAL_MIN = 10
APPEAL_MAX = 2000
ANSWER_MAX = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class AppealDecision(StrEnum):
    UNBLOCK = "unblock"
    KEEP_BLOCKED = "keep_blocked"


class AppealRefused(ShopError):
    """The appeal was not accepted; `reason` is not_blocked, too_short, too_long or
    already_open (message key `appeal.refused.<reason>`)."""

    code = "appeal_refused"
    message_key = "appeal.refused.not_blocked"

    def __init__(self, reason: str, **params: object) -> None:
        self.reason = reason
        self.message_key = f"appeal.refused.{reason}"
        super().__init__(f"appeal refused: {reason}", **params)


class AppealNotFound(ShopError):
    code = "appeal_not_found"
    message_key = "appeal.not_found"


def clean_text(text: object, lo: int, hi: int) -> str:
    """Bounded free text: length checked before anything else, control characters dropped."""
    if not isinstance(text, str) or len(text) > hi * 2:
        raise AppealRefused("too_long", max=hi)
    value = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()
    if len(value) > hi:
        raise AppealRefused("too_long", max=hi)
    if len(value) < lo:
        raise AppealRefused("too_short", min=lo)
    return value


async def open_appeal(account_id: int, text: object) -> AdminRequest:
    """File the account's appeal (refused unless blocked and without an open appeal)."""
    body = clean_text(text, APPEAL_MIN, APPEAL_MAX)
    async with in_transaction() as conn:
        # The account row is the lock: two appeals sent at once cannot both pass the check.
        account = await Account.filter(id=account_id).using_db(conn).select_for_update().first()
        if account is None or not account.blocked:
            raise AppealRefused("not_blocked")
        already = await AdminRequest.filter(
            account_id=account_id,
            kind=AdminRequestKind.UNBLOCK_APPEAL,
            status=AdminRequestStatus.OPEN,
        ).using_db(conn)
        if already:
            raise AppealRefused("already_open", id=already[0].id)
        tenant = await Tenant.filter(owner_id=account_id).using_db(conn).order_by("id").first()
        req = await AdminRequest.create(
            kind=AdminRequestKind.UNBLOCK_APPEAL,
            tenant_id=tenant.id if tenant else None,
            account_id=account_id,
            subject=f"account {account_id} ({account.username[:100]}) asks to be unblocked",
            body=body,
            using_db=conn,
        )
        await audit.record(
            f"account:{account_id}",
            "appeal.opened",
            "admin_request",
            req.id,
            tenant_id=req.tenant_id,
            after={"kind": str(req.kind), "blocked_reason": account.blocked_reason},
            using_db=conn,
        )
    return req


async def answer_appeal(
    request_id: int, decision: AppealDecision, message: object, who: str
) -> AdminRequest:
    """Resolve an open appeal with the operator's decision and message for the seller."""
    note = clean_text(message, 1, ANSWER_MAX)
    async with in_transaction() as conn:
        req = await AdminRequest.filter(id=request_id).using_db(conn).select_for_update().first()
        if req is None or req.kind != AdminRequestKind.UNBLOCK_APPEAL:
            raise AppealNotFound(f"no unblock appeal {request_id}")
        if req.status != AdminRequestStatus.OPEN:
            raise InvalidStateChange(f"appeal {request_id} was already answered")
        req.status = AdminRequestStatus.RESOLVED
        req.resolved_at = datetime.now(UTC)
        req.resolved_by = who
        req.resolution_note = note
        await req.save(
            using_db=conn,
            update_fields=["status", "resolved_at", "resolved_by", "resolution_note"],
        )
        await audit.record(
            who,
            "appeal.answered",
            "admin_request",
            req.id,
            tenant_id=req.tenant_id,
            before={"status": "open"},
            after={
                "status": "resolved",
                "decision": str(decision),
                "message": note,
                "account_id": req.account_id,
            },
            using_db=conn,
        )
    return req


@dataclass(frozen=True)
class AppealView:
    """What the seller sees of their latest appeal."""

    id: int
    open: bool
    created_at: datetime
    text: str
    decision: AppealDecision | None
    answer: str | None
    answered_at: datetime | None


async def latest_appeal(account_id: int) -> AppealView | None:
    """The account's most recent appeal, with the decision when answered."""
    req = (
        await AdminRequest.filter(account_id=account_id, kind=AdminRequestKind.UNBLOCK_APPEAL)
        .order_by("-id")
        .first()
    )
    if req is None:
        return None
    decision = None
    if req.status == AdminRequestStatus.RESOLVED:
        entry = (
            await AuditLog.filter(
                action="appeal.answered", target_type="admin_request", target_id=str(req.id)
            )
            .order_by("-id")
            .first()
        )
        raw = (entry.after or {}).get("decision") if entry else None
        # Resolved through the generic "resolve" route: no unblock happened.
        decision = (
            AppealDecision(raw) if raw in set(AppealDecision) else AppealDecision.KEEP_BLOCKED
        )
    return AppealView(
        id=req.id,
        open=req.status == AdminRequestStatus.OPEN,
        created_at=req.created_at,
        text=req.body,
        decision=decision,
        answer=req.resolution_note,
        answered_at=req.resolved_at,
    )

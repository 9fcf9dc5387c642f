"""A blocked seller's page: why the account is blocked, the appeal form, the team's answer.

A blocked account has no portal session (blocking revokes them and login refuses one), so
the signed Quart session remembers which account Discord just authenticated
(`web.portal.context.remember_blocked`, for a day): that is what lets the blocked page show
the account's own appeal and accept one. The writes are `shop.appeals`.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, g, redirect, request, session, url_for

from core.models import AuditLog
from shop.appeals import APPEAL_MAX, APPEAL_MIN, AppealDecision, AppealRefused, latest_appeal
from shop.appeals import open_appeal as file_appeal
from shop.models import Account
from web.portal.context import BLOCKED_SESSION_KEY, _, render, say
from web.portal.security import rate_limited

bp = Blueprint("appeal", __name__)

REMEMBER_S = 86400  # the Discord login that proved who this is stays good for a day
# Per account: 10 tries an hour (refused ones count). Filed appeals are bounded anyway:
# one open at a time, and only an operator's answer closes it.
APPEAL_LIMIT = (10, 3600)


async def blocked_account() -> Account | None:
    """The account this browser proved to be, while it was blocked (None when forgotten)."""
    account = getattr(g, "blocked_account", None)
    if account is not None:
        return account
    saved = session.get(BLOCKED_SESSION_KEY)
    if not isinstance(saved, dict) or time.time() - float(saved.get("at", 0)) > REMEMBER_S:
        return None
    return await Account.get_or_none(id=saved.get("id"))


async def blocked_page(
    account: Account, status: int = 403, error: str | None = None, text: str = ""
) -> Any:
    """Why the account is blocked, its latest appeal (open, or answered) and the form."""
    appeal = await latest_appeal(account.id)
    return await render(
        "portal/blocked.html",
        status=status if account.blocked else 200,
        blocked=account,
        appeal=appeal,
        can_appeal=account.blocked and (appeal is None or not appeal.open),
        error=error,
        text=text,
        appeal_min=APPEAL_MIN,
        appeal_max=APPEAL_MAX,
    )


@bp.post("/blocked/appeal")
async def send_appeal():
    """File an unblock appeal (bounded text, rate limited, one open at a time)."""
    account = await blocked_account()
    if account is None:
        return redirect(url_for("auth.login"))
    text = ((await request.form).get("text") or "")[: APPEAL_MAX * 2]
    if not account.blocked:
        return redirect(url_for("auth.blocked"))
    if await rate_limited("appeal", str(account.id), *APPEAL_LIMIT):
        return await blocked_page(
            account, 429, _("portal.appeal.rate_limited", count=APPEAL_LIMIT[0]), text
        )
    try:
        req = await file_appeal(account.id, text)
    except AppealRefused as refusal:
        return await blocked_page(account, 400, refusal.message(g.locale), text)
    await say("portal.appeal.sent", id=req.id)
    return redirect(url_for("auth.blocked"))


async def announce_answer(account: Account) -> None:
    """At login: when the team unblocked the account on appeal since its last login, show
    their message once (a flash on the first page)."""
    session.pop(BLOCKED_SESSION_KEY, None)
    appeal = await latest_appeal(account.id)
    if appeal is None or appeal.decision != AppealDecision.UNBLOCK or appeal.answered_at is None:
        return
    seen = await AuditLog.filter(
        action="portal.login",
        target_type="account",
        target_id=str(account.id),
        at__gt=appeal.answered_at,
    ).exists()
    if not seen:
        await say("portal.appeal.unblocked_flash", message=appeal.answer or "")

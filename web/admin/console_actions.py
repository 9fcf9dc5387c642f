"""Console pages for the runbook's operator actions: withdrawals (approve, complete with the
PIX end-to-end id, reject), accounts (block, unblock), alerts (acknowledge), sellers' requests
(resolve; answer an unblock appeal) and the audit log.

Every action is two steps: a GET shows what will change and asks for what the action needs
(a reason, the end-to-end id, the answer); the POST carries the session's CSRF token (the
console's `_csrf` check) and `confirm=yes`, and calls the same functions as the JSON API, so
the audit record is the same whichever way the operator acts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from quart import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from quart_schema import hide

from core.errors import IllegalTransition
from core.i18n import format_brl, t
from core.models import AuditLog
from fleet.models import Alert
from shop.appeals import ANSWER_MAX, AppealDecision
from shop.errors import ShopError
from shop.models import Account, AdminRequest, AdminRequestKind, AdminRequestStatus, Withdrawal
from shop.payout_listing import IN_FLIGHT, payouts_by_withdrawal, withdrawal_queue
from shop.payouts import approve as approve_for_payout
from shop.pix_proof import InvalidEndToEndId, parse_e2e_id
from shop.states import WithdrawalStatus
from shop.withdrawals import complete_withdrawal, reject_withdrawal
from web.admin.accounts import account_json, set_blocked
from web.admin.alerts import AuditQuery, acknowledge_alert
from web.admin.api import actor
from web.admin.appeals import answer
from web.admin.console import _csrf, locale
from web.admin.monitor import resolve_request

bp = Blueprint("console_actions", __name__)
bp.before_request(_csrf)  # same CSRF and same-origin rule as every console form

REASON_MAX = 1000
LIST_MAX = 200
PENDING = (WithdrawalStatus.REQUESTED, WithdrawalStatus.PROCESSING)
WITHDRAWAL_ACTIONS = {
    "approve": ((WithdrawalStatus.REQUESTED,), []),
    "complete": ((WithdrawalStatus.PROCESSING,), ["e2e_id"]),
    "reject": (PENDING, ["reason"]),
}


def _(key: str, **kw: Any) -> str:
    return t(key, locale(), **kw)


async def _confirm(
    title: str,
    lines: list[str],
    fields: list[str],
    cancel: str,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    page = await render_template(
        "admin/confirm.html",
        title=title,
        lines=lines,
        fields=fields,
        cancel=cancel,
        error=error,
        values=values or {},
        reason_max=REASON_MAX,
        answer_max=ANSWER_MAX,
        note_required=request.endpoint == "console_actions.request_action",
    )
    return page, status


async def _form() -> tuple[dict[str, str], bool]:
    form = await request.form
    values = {k: (form.get(k) or "").strip()[:ANSWER_MAX] for k in form if k != "csrf"}
    return values, values.get("confirm") == "yes"


# --- withdrawals -------------------------------------------------------------------------
@bp.get("/console/withdrawals")
@hide
async def withdrawals():
    """The work queue, or (`?status=`) the newest withdrawals in one status, with payouts."""
    status = request.args.get("status", "")[:16]
    if status in set(WithdrawalStatus):
        query = Withdrawal.filter(status=status).order_by("-requested_at", "-id")
        rows = await query.limit(LIST_MAX)
    else:
        status, rows = "", await withdrawal_queue(LIST_MAX)
    payouts = await payouts_by_withdrawal(w.id for w in rows)
    return await render_template(
        "admin/withdrawals.html",
        withdrawals=rows,
        payouts=payouts,
        in_flight=IN_FLIGHT,
        statuses=list(WithdrawalStatus),
        status=status,
    )


def _withdrawal_lines(w: Withdrawal) -> list[str]:
    return [
        _(
            "admin.withdrawal.summary",
            id=w.id,
            tenant=w.tenant_id,
            amount=format_brl(w.amount_cents),
        ),
        f"PIX {w.pix_key_type}: {w.pix_key}",
        _("admin.withdrawal." + str(w.status)),
    ]


@bp.route(
    "/console/withdrawals/<int:withdrawal_id>/<any(approve, complete, reject):action>",
    methods=["GET", "POST"],
)
@hide
async def withdrawal_action(withdrawal_id: int, action: str):
    w = await Withdrawal.get_or_none(id=withdrawal_id)
    if w is None:
        abort(404)
    allowed, fields = WITHDRAWAL_ACTIONS[action]
    title = _(f"admin.confirm.withdrawal_{action}", id=w.id)
    back = url_for("console_actions.withdrawals")
    if w.status not in allowed:
        await flash(_("admin.flash.not_now", status=_("admin.withdrawal." + str(w.status))), "bad")
        return redirect(back)
    if request.method == "GET":
        return await _confirm(title, _withdrawal_lines(w), fields, back)
    values, confirmed = await _form()
    error = None
    if not confirmed:
        error = _("admin.confirm.unconfirmed")
    elif action == "reject" and not values.get("reason"):
        error = _("admin.flash.reason_required")
    elif action == "complete":
        try:
            values["e2e_id"] = parse_e2e_id(values.get("e2e_id", ""))
        except InvalidEndToEndId as exc:
            error = _("admin.confirm.bad_e2e", detail=str(exc))
    if error:
        return await _confirm(title, _withdrawal_lines(w), fields, back, error, values, 400)
    who = actor()
    automatic = current_app.config["VITRINE_SETTINGS"].payouts_automatic
    try:
        if action == "approve":
            await approve_for_payout(w.id, who, automatic=automatic)
        elif action == "complete":
            await complete_withdrawal(w.id, who, values["e2e_id"])
        else:
            await reject_withdrawal(w.id, who, values["reason"][:REASON_MAX])
    except (ShopError, IllegalTransition) as exc:
        why = exc.message(locale()) if isinstance(exc, ShopError) else str(exc)
        await flash(_("admin.flash.withdrawal_failed", id=w.id, message=why), "bad")
        return redirect(back)
    done = "approve_automatic" if action == "approve" and automatic else action
    await flash(_(f"admin.flash.withdrawal_{done}", id=w.id), "ok")
    return redirect(back)


# --- accounts -----------------------------------------------------------------------------
@bp.get("/console/accounts")
@hide
async def accounts():
    blocked_only = request.args.get("blocked") == "1"
    search = (request.args.get("q") or "").strip()[:100]
    query = Account.all()
    if blocked_only:
        query = query.filter(blocked=True)
    if search:
        query = (
            query.filter(username__icontains=search)
            if not search.isdigit()
            else query.filter(discord_id=search)
        )
    rows = await query.order_by("-blocked", "id").limit(LIST_MAX)
    return await render_template(
        "admin/accounts.html",
        accounts=[await account_json(a) for a in rows],
        blocked_only=blocked_only,
        search=search,
    )


@bp.route(
    "/console/accounts/<int:account_id>/<any(block, unblock):action>", methods=["GET", "POST"]
)
@hide
async def account_action(account_id: int, action: str):
    account = await Account.get_or_none(id=account_id)
    if account is None:
        abort(404)
    back = url_for("console_actions.accounts")
    title = _(f"admin.confirm.account_{action}", id=account.id, name=account.username)
    lines = [
        f"Discord {account.discord_id} · {account.role}",
        _("admin.accounts.blocked_reason", reason=account.blocked_reason or "—")
        if account.blocked
        else _("admin.accounts.active"),
        _(f"admin.confirm.account_{action}_effect"),
    ]
    if request.method == "GET":
        return await _confirm(title, lines, ["reason"], back)
    values, confirmed = await _form()
    if not confirmed or not values.get("reason"):
        key = "admin.confirm.unconfirmed" if not confirmed else "admin.flash.reason_required"
        return await _confirm(title, lines, ["reason"], back, _(key), values, 400)
    await set_blocked(account.id, action == "block", values["reason"][:REASON_MAX], actor())
    await flash(_(f"admin.flash.account_{action}", id=account.id), "ok")
    return redirect(back)


# --- alerts -------------------------------------------------------------------------------
@bp.get("/console/alerts")
@hide
async def alerts():
    rows = await Alert.filter(acknowledged_at__isnull=True).order_by("-created_at").limit(LIST_MAX)
    return await render_template("admin/alerts.html", alerts=rows)


@bp.route("/console/alerts/<int:alert_id>/ack", methods=["GET", "POST"])
@hide
async def alert_ack(alert_id: int):
    alert = await Alert.get_or_none(id=alert_id)
    if alert is None:
        abort(404)
    back = url_for("console_actions.alerts")
    title = _("admin.confirm.alert_ack", id=alert.id)
    lines = [f"{alert.kind}: {alert.message}"]
    if request.method == "GET":
        return await _confirm(title, lines, ["note"], back)
    values, confirmed = await _form()
    if not confirmed:
        return await _confirm(
            title, lines, ["note"], back, _("admin.confirm.unconfirmed"), values, 400
        )
    await acknowledge_alert(alert.id, actor(), values.get("note") or None)
    await flash(_("admin.flash.acknowledged", id=alert.id), "ok")
    return redirect(back)


# --- sellers' requests and unblock appeals -------------------------------------------------
@bp.get("/console/requests")
@hide
async def requests():
    rows = (
        await AdminRequest.filter(status=AdminRequestStatus.OPEN)
        .order_by("created_at")
        .limit(LIST_MAX)
    )
    return await render_template("admin/requests.html", requests=rows)


@bp.route(
    "/console/requests/<int:request_id>/<any(resolve, answer):action>", methods=["GET", "POST"]
)
@hide
async def request_action(request_id: int, action: str):
    req = await AdminRequest.get_or_none(id=request_id)
    if req is None:
        abort(404)
    back = url_for("console_actions.requests")
    is_appeal = req.kind == AdminRequestKind.UNBLOCK_APPEAL
    if (action == "answer") != is_appeal or req.status != AdminRequestStatus.OPEN:
        await flash(_("admin.flash.request_not_open", id=req.id), "bad")
        return redirect(back)
    fields = ["decision", "message"] if is_appeal else ["note"]
    title = _(f"admin.confirm.request_{action}", id=req.id)
    lines = [f"{req.kind}: {req.subject}", req.body[:2000]]
    if is_appeal and req.account_id is not None:
        account = await Account.get_or_none(id=req.account_id)
        if account is not None:
            lines.append(_("admin.accounts.blocked_reason", reason=account.blocked_reason or "—"))
    if request.method == "GET":
        return await _confirm(title, lines, fields, back)
    values, confirmed = await _form()
    missing = [f for f in fields if not values.get(f)]
    decision = values.get("decision", "")
    if not confirmed or missing or (is_appeal and decision not in set(AppealDecision)):
        key = "admin.confirm.unconfirmed" if not confirmed else "admin.confirm.fill_all"
        return await _confirm(title, lines, fields, back, _(key), values, 400)
    if is_appeal:
        await answer(req.id, AppealDecision(decision), values["message"], actor())
        await flash(_(f"admin.flash.appeal_{decision}", id=req.id), "ok")
    else:
        await resolve_request(req.id, values["note"], actor())
        await flash(_("admin.flash.resolved", id=req.id), "ok")
    return redirect(back)


# --- audit log ----------------------------------------------------------------------------
def _utc(when: datetime) -> datetime:
    """A date typed without a zone (`2026-11-01`) is UTC, like the table shows."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@bp.get("/console/audit")
@hide
async def audit():
    raw = {k: v.strip() for k, v in request.args.items() if v.strip()}
    try:
        args = AuditQuery.model_validate(raw)
        error = None
    except ValidationError as exc:
        args, error = AuditQuery(), "; ".join(str(e["loc"][0]) for e in exc.errors())
    query = AuditLog.all()
    for name in ("actor", "target_type", "target_id", "tenant_id"):
        if (value := getattr(args, name)) is not None:
            query = query.filter(**{name: value})
    if args.action:
        key = "action__startswith" if args.action.endswith(".") else "action"
        query = query.filter(**{key: args.action})
    if args.since is not None:
        query = query.filter(at__gte=_utc(args.since))
    if args.until is not None:
        query = query.filter(at__lt=_utc(args.until))
    rows = await query.order_by("-at", "-id").limit(args.limit)
    return await render_template("admin/audit.html", entries=rows, args=raw, error=error)

"""The HTML console on the admin port: status, the work queue, instances with buttons, charts.

The admin token is entered once and kept in a signed, HttpOnly, SameSite=Strict session
cookie; every form carries a CSRF token bound to that session. Pages call the same functions
as the JSON API, so both always agree.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from quart import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from quart_schema import hide

from core.i18n import SUPPORTED, format_brl, t
from shop import inputs
from shop.indicators import daily_sales
from web.admin.alerts import acknowledge_alert
from web.admin.api import MAX_ID, actor
from web.admin.auth import check_token, start_console_session
from web.admin.indicators import PERIODS, compute
from web.admin.instances import ACTIONS, InstancesQuery, control_instance, list_instances
from web.admin.login import login_page
from web.admin.monitor import resolve_request, work_queue
from web.admin.orders import run_retry
from web.admin.status import collect_status
from web.common import safe_next_path

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console/static",
)
CHART_COLORS = {
    "online": "ok",
    "starting": "info",
    "backoff": "warn",
    "crashloop": "bad",
    "error": "bad",
    "suspended": "muted",
    "stopped": "muted",
    "dm": "ok",
    "channel": "info",
    "failed": "bad",
    "pending": "info",
    "waiting_stock": "warn",
    "awaiting_fulfilment": "warn",
}


def locale() -> str:
    chosen = session.get("locale")
    return chosen if chosen in SUPPORTED else "pt-BR"


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    loc = locale()
    return {
        "_": lambda key, **kw: t(key, loc, **kw),
        "locale": loc,
        "brl": format_brl,
        "csrf_token": session.get("csrf", ""),
    }


@bp.before_request
async def _csrf() -> None:
    """Forms sent with the session cookie must carry the session's CSRF token; every console
    form (the login form too, which has no session yet) must come from this origin."""
    if request.method != "POST":
        return
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin and urlsplit(origin)[:2] != urlsplit(request.host_url)[:2]:
        abort(403, "cross-origin form refused")
    if request.endpoint == "console.login":
        return
    if not getattr(g, "console", False):
        return  # bearer-authenticated: a browser cannot forge that header
    form = await request.form
    sent, expected = form.get("csrf", ""), session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(403, "CSRF token missing or wrong: reload the page and try again")


@bp.post("/console/login")
@hide
async def login():
    """Check the token once; the session then authenticates the console's pages."""
    form = await request.form
    label = check_token(
        form.get("token", "").strip(), current_app.config["VITRINE_SETTINGS"].admin_api_tokens
    )
    if label is None:
        return await login_page(status=401, error=t("admin.login.wrong_token", locale()))
    keep_locale = session.get("locale")
    start_console_session(label)
    if keep_locale:
        session["locale"] = keep_locale
    return redirect(url_for("console.dashboard"))


@bp.post("/console/logout")
@hide
async def logout():
    session.clear()
    return redirect(url_for("console.dashboard"))


@bp.get('/console/lang/<any("pt-BR", "en"):lang>')
@hide
async def set_language(lang: str):
    session["locale"] = lang
    return redirect(_back_to(url_for("console.dashboard")))


def _back_to(default: str) -> str:
    """The console page the operator came from (a same-origin Referer's path), else `default`:
    never the Referer itself, which another site chooses when it links here."""
    parts = urlsplit(request.referrer or "")
    if parts[:2] != urlsplit(request.host_url)[:2]:
        return default
    return safe_next_path(parts.path + (f"?{parts.query}" if parts.query else ""), default)


def _chart(title: str, values: dict[str, Any], label_prefix: str = "") -> dict[str, Any]:
    numbers = {k: (v or 0) for k, v in values.items()}
    top = max(numbers.values(), default=0) or 1
    return {
        "title": title,
        "bars": [
            {
                "label": t(f"{label_prefix}{k}", locale()) if label_prefix else k,
                "value": v,
                "width": round(220 * v / top, 1),
                "css": CHART_COLORS.get(k, "info"),
            }
            for k, v in numbers.items()
        ],
    }


def charts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    loc = locale()
    inst = {k: v for k, v in figures["instances"].items() if not k.endswith("total")}
    deliveries = {k: figures["deliveries"][k] for k in ("dm", "channel", "failed")}
    orders = {k: figures["orders"][k] for k in ("pending", "waiting_stock", "awaiting_fulfilment")}
    return [
        _chart(t("admin.chart.instances", loc), inst, "admin.state."),
        _chart(t("admin.chart.orders", loc), orders, "admin.state."),
        _chart(t("admin.chart.deliveries", loc), deliveries, "admin.delivery."),
    ]


DAILY_DAYS = 14


def daily_chart(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Vertical bars: revenue per Brasília day (the SVG geometry is computed here)."""
    loc = locale()
    peak = max((d["revenue_cents"] for d in series), default=0) or 1
    width = 420 / max(1, len(series))
    bars = []
    for index, d in enumerate(series):
        height = round(100 * d["revenue_cents"] / peak, 1)
        label = f"{d['day'][8:10]}/{d['day'][5:7]}"
        bars.append(
            {
                "x": round(index * width + 2, 1),
                "width": round(width - 4, 1),
                "y": round(104 - height, 1),
                "height": height,
                "label": label,
                "show_label": index % 2 == len(series) % 2 or index == len(series) - 1,
                "css": "bad" if d["failed"] else "ok",
                "tip": t(
                    "admin.chart.daily_bar",
                    loc,
                    day=label,
                    count=d["paid"],
                    total=format_brl(d["revenue_cents"]),
                    failed=d["failed"],
                ),
            }
        )
    return {"title": t("admin.chart.daily", loc, days=len(series)), "bars": bars}


@bp.get("/")
@hide
async def dashboard():
    period = request.args.get("period", "24h")
    if period not in PERIODS:
        period = "24h"
    status = await collect_status()
    figures = await compute(period) if status["db"]["ok"] else None
    queue = await work_queue() if status["db"]["ok"] else []
    daily = daily_chart(await daily_sales(DAILY_DAYS)) if status["db"]["ok"] else None
    return await render_template(
        "admin/dashboard.html",
        status=status,
        figures=figures,
        period=period,
        periods=list(PERIODS),
        charts=charts(figures) if figures else [],
        queue=queue[:50],
        queue_total=len(queue),
        daily=daily,
    )


@bp.get("/console/instances")
@hide
async def instances():
    try:
        args = InstancesQuery.model_validate({k: v for k, v in request.args.items() if v})
    except ValidationError:
        args = InstancesQuery()
    page = await list_instances(args)
    return await render_template(
        "admin/instances.html", page=page, args=args, states=list(CHART_COLORS)[:7], actions=ACTIONS
    )


@bp.post(f"/console/instances/<int:instance_id>/<any({', '.join(ACTIONS)}):action>")
@hide
async def instance_action(instance_id: int, action: str):
    form = await request.form
    reason = (form.get("reason") or "").strip()[:1000] or None
    body, status = await control_instance(instance_id, action, reason, actor())
    if status == 200:
        await flash(
            t(
                "admin.flash.action_ok",
                locale(),
                action=action,
                id=instance_id,
                message=body.get("message", ""),
            ),
            "ok",
        )
    else:
        await flash(
            t(
                "admin.flash.action_failed",
                locale(),
                action=action,
                id=instance_id,
                message=body.get("message", ""),
            ),
            "bad",
        )
    return redirect(_back_to(url_for("console.instances")))


@bp.post("/console/requests/<int:request_id>/resolve")
@hide
async def resolve(request_id: int):
    note = ((await request.form).get("note") or "").strip()[:2000]
    if not note:
        await flash(t("admin.flash.note_required", locale()), "bad")
    elif await resolve_request(request_id, note, actor()) is None:
        abort(404)
    else:
        await flash(t("admin.flash.resolved", locale(), id=request_id), "ok")
    return redirect(url_for("console.dashboard"))


@bp.post("/console/alerts/<int:alert_id>/acknowledge")
@hide
async def acknowledge(alert_id: int):
    if await acknowledge_alert(alert_id, actor()) is None:
        abort(404)
    await flash(t("admin.flash.acknowledged", locale(), id=alert_id), "ok")
    return redirect(url_for("console.dashboard"))


def _form_id(form: Any, name: str) -> int | None:
    try:
        return inputs.parse_quantity((form.get(name) or "").strip(), lo=0, hi=MAX_ID)
    except inputs.InvalidInput:
        return None


@bp.post("/console/orders/retry-waiting-stock")
@hide
async def retry_waiting():
    form = await request.form
    body = await run_retry(_form_id(form, "tenant_id"), _form_id(form, "product_id"), actor())
    await flash(
        t(
            "admin.flash.retried",
            locale(),
            delivered=body["delivered"],
            waiting=body["still_waiting"],
        ),
        "ok",
    )
    return redirect(url_for("console.dashboard"))

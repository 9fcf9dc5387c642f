"""Dashboard: live bot state (htmx polling), restart, today's sales, open orders, balance."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from quart import Blueprint, g, redirect, url_for

from core import audit
from fleet.control_protocol import Action, ControlError, ControlTimeout, send_command
from fleet.guildscope import recent_foreign_guilds
from fleet.models import BotInstance
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import InstanceState
from shop import ledger, stock
from shop.indicators import BRT, daily_sales, open_order_counts
from shop.payments.connected_report import connected_money
from shop.tickets import stats as ticket_stats
from web.portal.context import _, actor, owned, redis, render, say, store_required
from web.portal.notices_page import dashboard_notices

bp = Blueprint("dashboard", __name__)

CHART_DAYS = 14
RESTART_TIMEOUT_S = 8.0
# lastError codes with a specific "what to do" text (portal.hint.<code>).
HINTED_CODES = frozenset(
    {
        "401",
        "4004",
        "4013",
        "4014",
        "session_limit",
        "restart_budget",
        "crashloop",
        "auto_suspended",
        "stuck",
    }
)


def _instance_view(instance: BotInstance, rec: RuntimeRecord | None) -> dict[str, Any]:
    state = (
        InstanceState.SUSPENDED
        if instance.suspended
        else (rec.state if rec else InstanceState.STOPPED)
    )
    view: dict[str, Any] = {
        "instance": instance,
        "state": str(state),
        "state_label": _(f"runtime.state.{state}"),
        "uptime": None,
        "latency_ms": None,
        "guilds": None,
        "gateway": None,
        "error": None,
        "hint": None,
    }
    if rec is not None:
        if state == InstanceState.ONLINE and rec.online_since:
            view["uptime"] = _duration(time.time() - rec.online_since)
        view["latency_ms"] = None if rec.latency_ms is None else round(rec.latency_ms)
        view["guilds"] = rec.guilds
        if state == InstanceState.ONLINE and rec.connected_by in ("resume", "identify"):
            view["gateway"] = _(f"resume.portal.{rec.connected_by}")  # how it came back
        if rec.last_error is not None and state != InstanceState.ONLINE:
            view["error"] = rec.last_error.message
            code = rec.last_error.code
            view["hint"] = _(
                f"portal.hint.{code}" if code in HINTED_CODES else "portal.hint.generic"
            )
    if instance.suspended:
        view["error"] = instance.suspension_reason or view["error"]
        view["hint"] = _("portal.hint.suspended")
    elif not instance.application_id:
        view["hint"] = _("portal.hint.no_token")
    return view


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, rem = divmod(minutes, 1440)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}min"
    return f"{mins}min"


async def _sales(tenant_id: int) -> dict[str, Any]:
    """Today's paid sales and the last CHART_DAYS days, in Brasília days."""
    series = await daily_sales(CHART_DAYS, tenant_id)
    peak = max(d["revenue_cents"] for d in series) or 1
    chart = [
        {
            "label": f"{d['day'][8:10]}/{d['day'][5:7]}",
            "cents": d["revenue_cents"],
            "count": d["paid"],
            "height": round(100 * d["revenue_cents"] / peak),
        }
        for d in series
    ]
    return {
        "today_cents": series[-1]["revenue_cents"],
        "today_count": series[-1]["paid"],
        "chart": chart,
    }


async def live_context() -> dict[str, Any]:
    tenant = g.tenant
    instances = await BotInstance.filter(tenant_id=tenant.id).order_by("id")
    records = (
        await RuntimeStore(redis()).get_many(i.id for i in instances)
        if redis() is not None and instances
        else {}
    )
    return {
        "instances": [_instance_view(i, records.get(i.id)) for i in instances],
        "sales": await _sales(tenant.id),
        "orders": await open_order_counts(tenant.id),
        "balance": await ledger.balance(tenant.id),
        "connected": await connected_money(tenant.id),
        "low_stock": await stock.low_stock(tenant.id, tenant.low_stock_threshold),
        "foreign_guilds": [
            dict(row, when=row["at"].astimezone(BRT).strftime("%d/%m %H:%M"))
            for row in await recent_foreign_guilds(tenant.id)
        ],
        "no_guild": bool(instances) and not tenant.guild_id,
        "notices": await dashboard_notices(tenant, g.locale),
        "updated_at": datetime.now(BRT).strftime("%H:%M:%S"),
    }


@bp.get("/")
@store_required
async def index():
    figures = await ticket_stats(g.tenant.id)  # not in live_context: no query every 3 s
    return await render("portal/dashboard.html", **await live_context(), ticket_stats=figures)


@bp.get("/dashboard/live")
@store_required
async def live():
    """The part of the dashboard htmx refreshes every few seconds."""
    return await render("portal/_live.html", **await live_context())


@bp.post("/instances/<int:instance_id>/restart")
@store_required
async def restart(instance_id: int):
    instance = await owned(BotInstance, instance_id)
    if instance.suspended:
        await say("portal.restart.suspended", "error")
        return redirect(url_for("dashboard.index"))
    await audit.record(
        actor(), "instance.restart_requested", "instance", instance.id, tenant_id=g.tenant.id
    )
    try:
        result = await send_command(
            redis(), Action.RESTART, instance.id, actor=actor(), timeout=RESTART_TIMEOUT_S
        )
    except ControlTimeout:
        await say("portal.restart.queued", "warning")
    except ControlError:
        await say("portal.restart.failed", "error")
    else:
        if result.ok:
            await say("portal.restart.ok")
        else:
            await say(f"portal.restart.{result.code}", "error")
    return redirect(url_for("dashboard.index"))

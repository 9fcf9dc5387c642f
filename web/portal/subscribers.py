"""Subscribers (issue 16): accesses by tab (active / ending within 7 days / ended), monthly
recurring revenue with a 12-month chart, renewals; staff grant, extend and revoke by hand.

Thin views: `shop.access_stats` reads, `shop.access_staff` writes and audits,
`shop.access_roles` checks the roles against what the store's bot sees.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from shop import access_roles, access_staff, access_stats, blocklist, inputs
from shop.access_stats import Tab
from shop.catalog import Errors
from shop.errors import ShopError
from shop.models import AccessGrant, Variation
from web.portal.context import actor, form_errors, owned, render, say, store_required
from web.portal.variation_access import guild_roles, picker, store_guild

bp = Blueprint("subscribers", __name__)

GRANT_VARIATIONS_MAX = 500  # options in the grant form's variation list
CHART_W, CHART_H = 24, 100  # one month's slot in the SVG's user units; bar area height


def _chart(points: list[access_stats.Point]) -> dict[str, Any]:
    """Bars for MRR, a line for active subscribers (each scaled to its own peak)."""
    peak_mrr = max(p.mrr_cents for p in points) or 1
    peak_active = max(p.active for p in points) or 1
    bars, line = [], []
    for i, p in enumerate(points):
        height = round(CHART_H * p.mrr_cents / peak_mrr, 1)
        bars.append({"x": i * CHART_W + 3, "y": CHART_H - height, "h": max(height, 0.5), "p": p})
        y = round(CHART_H - CHART_H * p.active / peak_active, 1)
        line.append(f"{i * CHART_W + CHART_W / 2},{y}")
    return {
        "bars": bars,
        "line": " ".join(line),
        "width": CHART_W * len(points),
        "bar_w": CHART_W - 6,
        "peak_mrr": peak_mrr if peak_mrr > 1 else 0,
        "peak_active": peak_active,
    }


@bp.get("/subscribers")
@store_required
async def subscribers():
    now = datetime.now(UTC)
    raw_tab = (request.args.get("tab") or "")[:10]
    tab = Tab(raw_tab) if raw_tab in {t.value for t in Tab} else Tab.ACTIVE
    page = inputs.page_number(request.args.get("page"))
    rows, total = await access_stats.subscribers(g.tenant.id, tab, now, page)
    points = await access_stats.mrr_series(g.tenant.id, now)
    return await render(
        "portal/subscribers.html",
        tab=tab.value,
        tabs=[t.value for t in Tab],
        counts=await access_stats.tab_counts(g.tenant.id, now),
        rows=rows,
        label=access_stats.access_label,
        page=page,
        pages=max(1, -(-total // access_stats.PAGE_SIZE)),
        current=points[-1],
        points=points,
        chart=_chart(points),
        duration_max=access_roles.DURATION_MAX_DAYS,
    )


async def _grant_page(
    form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
):
    view, read_error = await store_guild()
    variations = (
        await Variation.filter(tenant_id=g.tenant.id, deleted_at__isnull=True)
        .order_by("product_id", "id")
        .limit(GRANT_VARIATIONS_MAX)
        .prefetch_related("product")
    )
    return await render(
        "portal/access_grant.html",
        status=status,
        roles=picker(view),
        read_error=read_error,
        variations=variations,
        form=form or {"duration": "30", "role_ids": []},
        errors=errors or {},
        duration_presets=access_roles.DURATION_PRESETS,
        duration_max=access_roles.DURATION_MAX_DAYS,
        max_roles=access_roles.MAX_ROLES,
    )


@bp.get("/subscribers/grant")
@store_required
async def grant_form():
    return await _grant_page()


@bp.post("/subscribers/grant")
@store_required
async def grant():
    form = await request.form
    role_values = form.getlist("role_ids")
    shown = {
        "buyer": (form.get("buyer") or "")[:64],
        "role_ids": [str(v)[:21] for v in role_values[: access_roles.MAX_ROLES * 4]],
        "duration": (form.get("duration") or "")[:10],
        "duration_days": (form.get("duration_days") or "")[:10],
        "variation": (form.get("variation") or "")[:12],
    }
    errors: Errors = {}
    buyer = ""
    try:
        buyer = blocklist.parse_discord_id(form.get("buyer"))
    except blocklist.InvalidDiscordId:
        errors["buyer"] = ("blocklist.error.discord_id", {})
    variation = None
    if shown["variation"]:
        try:
            variation = await Variation.get_or_none(
                id=inputs.parse_id(shown["variation"]),
                tenant_id=g.tenant.id,
                deleted_at__isnull=True,
            )
        except inputs.InvalidInput:
            variation = None
        if variation is None:
            errors["variation"] = ("subs.error.no_variation", {})
    role_ids = access_roles.parse_role_ids(role_values, errors)
    if not role_ids and "role_ids" not in errors:
        role_ids = list(variation.role_ids or []) if variation else []
        if not role_ids:
            errors["role_ids"] = ("subs.role.none_chosen", {})
    days = access_roles.parse_duration(form, errors)
    view, _read_error = await store_guild(fresh=True)
    access_roles.check_roles(guild_roles(view), role_ids, errors)
    if errors:
        return await _grant_page(shown, form_errors(errors), 400)
    try:
        await access_staff.grant(g.tenant, buyer, role_ids, days, actor(), variation=variation)
    except ShopError as exc:
        return await _grant_page(shown, {"buyer": exc.message(g.locale)}, 409)
    await say("subs.staff.granted")
    return redirect(url_for("subscribers.subscribers"))


@bp.post("/accesses/<int:access_id>/extend")
@store_required
async def extend(access_id: int):
    access = await owned(AccessGrant, access_id)  # another store's access: 404
    form = await request.form
    errors: Errors = {}
    days = access_roles.parse_days(form.get("days"), errors, "days")
    if days is None:
        key, params = errors["days"]
        await say(key, "error", **params)
    else:
        try:
            await access_staff.extend(access, days, actor())
        except ShopError as exc:
            await say("subs.staff.refused", "error", reason=exc.message(g.locale))
        else:
            await say("subs.staff.extended", days=days)
    return redirect(_back())


@bp.post("/accesses/<int:access_id>/revoke")
@store_required
async def revoke(access_id: int):
    access = await owned(AccessGrant, access_id)  # another store's access: 404
    try:
        await access_staff.revoke(access, actor())
    except ShopError as exc:
        await say("subs.staff.refused", "error", reason=exc.message(g.locale))
    else:
        await say("subs.staff.revoked")
    return redirect(_back())


def _back() -> str:
    tab = (request.args.get("tab") or "")[:10]
    if tab in {t.value for t in Tab}:
        return url_for("subscribers.subscribers", tab=tab)
    return url_for("subscribers.subscribers")

"""Store settings: name, delivery mode, language, low-stock threshold, unpaid orders one buyer
may hold. The server, channels and buyer role are picked in `discord_setup`."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from core import audit
from core.i18n import SUPPORTED
from fleet.control_protocol import mark_dirty
from fleet.models import BotInstance
from shop import inputs
from shop.buyer_limits import MAX_OPEN_ORDERS_LIMIT
from shop.models.accounts import DeliveryMode
from web.portal.context import actor, form_errors, redis, render, say, store_required

bp = Blueprint("settings", __name__)

# The server, channels and buyer role are picked from what the bot sees (discord_setup).
FIELDS = (
    "name",
    "delivery_mode",
    "locale",
    "low_stock_threshold",
    "max_open_orders_per_buyer",
)


def _current() -> dict[str, Any]:
    return {f: getattr(g.tenant, f) if getattr(g.tenant, f) is not None else "" for f in FIELDS}


def _clean(form: Any) -> tuple[dict[str, Any], dict[str, tuple[str, dict[str, Any]]]]:
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    values: dict[str, Any] = {}
    name = (form.get("name") or "").strip()
    if not name:
        errors["name"] = ("portal.error.required", {})
    elif len(name) > 100:
        errors["name"] = ("portal.error.too_long", {"max": 100})
    values["name"] = name
    mode = form.get("delivery_mode") or ""
    if mode not in {m.value for m in DeliveryMode}:
        errors["delivery_mode"] = ("portal.error.required", {})
    else:
        values["delivery_mode"] = DeliveryMode(mode)
    locale = form.get("locale") or ""
    if locale not in SUPPORTED:
        errors["locale"] = ("portal.error.required", {})
    values["locale"] = locale
    try:
        values["low_stock_threshold"] = inputs.parse_quantity(
            (form.get("low_stock_threshold") or "").strip(), lo=0, hi=100_000
        )
    except inputs.InvalidInput:
        errors["low_stock_threshold"] = ("portal.error.between", {"lo": 0, "hi": 100_000})
    try:
        values["max_open_orders_per_buyer"] = inputs.parse_quantity(
            (form.get("max_open_orders_per_buyer") or "").strip(), lo=1, hi=MAX_OPEN_ORDERS_LIMIT
        )
    except inputs.InvalidInput:
        errors["max_open_orders_per_buyer"] = (
            "portal.error.between",
            {"lo": 1, "hi": MAX_OPEN_ORDERS_LIMIT},
        )
    return values, errors


@bp.route("/settings", methods=["GET", "POST"])
@store_required
async def settings():
    modes = [m.value for m in DeliveryMode]
    if request.method == "GET":
        return await render("portal/settings.html", form=_current(), errors={}, modes=modes)
    form = await request.form
    values, errors = _clean(form)
    if errors:
        return await render(
            "portal/settings.html", status=400, form=form, errors=form_errors(errors), modes=modes
        )
    before = _current()
    g.tenant.update_from_dict(values)
    await g.tenant.save()
    await audit.record(
        actor(),
        "tenant.settings_updated",
        "tenant",
        g.tenant.id,
        tenant_id=g.tenant.id,
        before=before,
        after=_current(),
    )
    if before == _current():
        await say("portal.saved")
        return redirect(url_for("settings.settings"))
    # The bot reads these settings at start: bump the instances so they pick them up.
    instances = await BotInstance.filter(tenant_id=g.tenant.id)
    for instance in instances:
        instance.config_version += 1
        await instance.save(update_fields=["config_version", "updated_at"])
    if instances and redis() is not None:
        await mark_dirty(redis(), *[i.id for i in instances])
    await say("portal.saved")
    return redirect(url_for("settings.settings"))

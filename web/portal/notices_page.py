"""The store owner's notice preferences (which kinds the bot DMs) and the dashboard's list
of recent notices (issue 18). The notices themselves are `shop.notify.seller`'s."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from core import audit
from shop.models import NoticeKind
from shop.notify.seller import notice_text, recent_notices, set_turned_off, turned_off
from web.portal.context import actor, say, store_required

bp = Blueprint("notices", __name__)
KINDS = [str(k) for k in NoticeKind]
DASHBOARD_NOTICES = 5


@bp.app_context_processor
def _notice_settings() -> dict[str, Any]:
    """What the settings page's notice form needs (without touching the settings view)."""
    tenant = getattr(g, "tenant", None)
    return {
        "notice_kinds": KINDS,
        "notices_off": turned_off(tenant) if tenant is not None else set(),
    }


async def dashboard_notices(tenant: Any, locale: str) -> list[dict[str, Any]]:
    """The latest notices as the dashboard shows them: when, text, what became of the DM."""
    return [
        {
            "id": n.id,
            "at": n.created_at,
            "text": notice_text(n, locale, tenant.name),
            "status": str(n.status),
        }
        for n in await recent_notices(tenant.id, DASHBOARD_NOTICES)
    ]


@bp.post("/settings/notices")
@store_required
async def save():
    """Turn DM notice kinds on or off (checked = on); audited."""
    form = await request.form
    off = {k for k in KINDS if form.get(f"notice_{k}") != "on"}
    before = sorted(turned_off(g.tenant))
    await set_turned_off(g.tenant, off)
    await audit.record(
        actor(),
        "tenant.notices_updated",
        "tenant",
        g.tenant.id,
        tenant_id=g.tenant.id,
        before={"notices_off": before},
        after={"notices_off": sorted(off)},
    )
    await say("notify.settings.saved")
    return redirect(url_for("settings.settings"))

"""Support tickets in the portal (issue 17): the seller picks the staff role and, optionally, a
category for private ticket channels (from what the bot sees, as the onboarding pickers do) and
the daily limit per buyer; without a category tickets are private threads in the support
channel picked on the channels page. Writes and audit records are `shop.tickets`. The page says
what the bot lacks for tickets (Manage Threads in the support channel to lock a closed ticket;
Manage Channels in the category), as the onboarding check does."""

from __future__ import annotations

from quart import Blueprint, g, redirect, request, url_for

from shop import inputs, tickets
from shop.bot_requirements import ChannelInfo, Choices, check
from shop.errors import ShopError
from web.portal.context import _, actor, render, say, store_required
from web.portal.discord_reads import GuildView
from web.portal.store_bot import ID_MAX, explain, snowflake, store_guild

bp = Blueprint("tickets_page", __name__)
CATEGORY = 4  # Discord's channel type of a category


def _categories(view: GuildView | None) -> list[ChannelInfo]:
    found = [c for c in view.snapshot.channels.values() if c.type == CATEGORY] if view else []
    return sorted(found, key=lambda c: c.name.lower())


async def _guild_view() -> tuple[GuildView | None, str | None]:
    """The store's server as the bot sees it; (None, why) when it cannot be read."""
    return await store_guild("onb.check.unavailable")


def _problems(view: GuildView | None, category_id: str | None) -> list[dict[str, str]] | None:
    """What the bot lacks for tickets as saved (support channel or category), explained."""
    if view is None:
        return None
    choices = Choices(
        channels={"support": g.tenant.support_channel_id}, ticket_category_id=category_id
    )
    return [explain(p, view) for p in check(view.snapshot, choices)]


async def _page(error: str | None = None, status: int = 200, form: dict[str, str] | None = None):
    settings = await tickets.settings_of(g.tenant.id)
    view, read_error = await _guild_view()
    channel = None
    if view is not None and g.tenant.support_channel_id:
        channel = next(
            (c.name for c in view.text_channels if c.id == g.tenant.support_channel_id), None
        )
    shown = form or {
        "staff_role": settings.staff_role_id or "",
        "category": settings.category_id or "",
        "per_day": str(settings.per_buyer_per_day),
    }
    return await render(
        "portal/ticket_settings.html",
        status=status,
        view=view,
        read_error=read_error,
        error=error,
        form=shown,
        channel=channel or g.tenant.support_channel_id,
        categories=_categories(view),
        per_day_max=tickets.PER_DAY_LIMIT,
        problems=_problems(view, settings.category_id),
    )


@bp.get("/tickets/settings")
@store_required
async def settings():
    return await _page()


@bp.post("/tickets/settings")
@store_required
async def save():
    raw = await request.form
    form = {
        "staff_role": str(raw.get("staff_role") or "")[: ID_MAX + 1],
        "category": str(raw.get("category") or "")[: ID_MAX + 1],
        "per_day": str(raw.get("per_day") or "")[:8],
    }
    role, category = snowflake(form["staff_role"]), snowflake(form["category"])
    if (form["staff_role"].strip() and role is None) or (form["category"].strip() and not category):
        return await _page(_("portal.error.snowflake"), 400, form)
    try:
        per_day = inputs.parse_quantity(form["per_day"], lo=1, hi=tickets.PER_DAY_LIMIT)
    except ShopError as exc:
        return await _page(exc.message(g.locale), 400, form)
    view, _unread = await _guild_view()
    if view is not None and (
        (role and role not in {r.id for r in view.roles})
        or (category and category not in {c.id for c in _categories(view)})
    ):
        return await _page(_("onb.error.foreign_id"), 400, form)
    await tickets.save_settings(g.tenant, role, per_day, actor(), category_id=category)
    await say("portal.tickets.saved")
    return redirect(url_for("tickets_page.settings"))

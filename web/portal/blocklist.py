"""The store's buyer blocklist: list, block by Discord id or from an order, lift a block.

Thin views over `shop.blocklist` (which validates and audits); CSRF and the Origin check are
the portal's `before_request` (`web.portal.security`), like every other form.
"""

from __future__ import annotations

from quart import Blueprint, g, redirect, request, url_for

from shop import blocklist
from shop.models import BlockedBuyer, BlockSource, Order
from web.portal.context import _, actor, owned, render, say, store_required

bp = Blueprint("blocklist", __name__)


async def _page(form: dict[str, str] | None = None, error: str | None = None, status: int = 200):
    entries = await blocklist.blocked_buyers(g.tenant.id)
    return await render(
        "portal/blocklist.html",
        status=status,
        entries=entries,
        form=form or {},
        error=error,
        sources=[s.value for s in BlockSource],
        max_reason=blocklist.MAX_REASON,
    )


@bp.get("/blocklist")
@store_required
async def blocked():
    return await _page()


@bp.post("/blocklist")
@store_required
async def add():
    form = await request.form
    shown = {
        "discord_id": (form.get("discord_id") or "")[:64],
        "reason": (form.get("reason") or "")[: blocklist.MAX_REASON],
    }
    try:
        discord_id = blocklist.parse_discord_id(form.get("discord_id"))
    except blocklist.InvalidDiscordId as exc:
        return await _page(shown, error=exc.message(g.locale), status=400)
    _entry, created = await blocklist.block_buyer(
        g.tenant.id, discord_id, actor(), reason=shown["reason"]
    )
    await say("portal.blocklist.added" if created else "portal.blocklist.already")
    return redirect(url_for("blocklist.blocked"))


@bp.post("/blocklist/<int:block_id>/lift")
@store_required
async def lift(block_id: int):
    entry = await owned(BlockedBuyer, block_id)  # another store's block (or none): 404
    if await blocklist.unblock_buyer(g.tenant.id, entry.id, actor()):
        await say("portal.blocklist.lifted")
    else:
        await say("blocklist.error.not_found", "error")
    return redirect(url_for("blocklist.blocked"))


@bp.post("/orders/<int:order_id>/block-buyer")
@store_required
async def block_from_order(order_id: int):
    order = await owned(Order, order_id)  # another store's order: 404
    _entry, created = await blocklist.block_from_order(
        g.tenant.id, order.id, actor(), reason=_("portal.blocklist.order", order=order.id)
    )
    await say("portal.blocklist.added" if created else "portal.blocklist.already")
    return redirect(url_for("orders.order_detail", order_id=order.id))

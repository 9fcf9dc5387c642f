"""Roles and duration of a variation (issue 16): the picker on the variation's page, read from
what the store's bot sees, and its own form (`POST /variations/<id>/access`).

Thin: `shop.access_roles` parses, refuses roles the bot cannot give, writes and audits. The
guild is read fresh when saving (a role moved above the bot a second ago is refused).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, redirect, request, url_for

from shop import access_roles
from shop.catalog import cents_to_input
from shop.models import Variation
from web.portal.context import actor, form_errors, owned, render, say, store_required
from web.portal.discord_reads import GuildView
from web.portal.store_bot import store_guild as _store_guild

bp = Blueprint("variation_access", __name__)


async def store_guild(*, fresh: bool = False) -> tuple[GuildView | None, str | None]:
    """The store's server as its bot sees it, or (None, why not) in the seller's language."""
    return await _store_guild("subs.role.no_server", fresh=fresh)


def guild_roles(view: GuildView | None) -> access_roles.GuildRoles | None:
    return None if view is None else access_roles.GuildRoles(view.snapshot, view.role_names)


def picker(view: GuildView | None) -> list[dict[str, Any]]:
    """The roles to offer, highest first, each marked when the bot could not give it."""
    if view is None:
        return []
    guild = access_roles.GuildRoles(view.snapshot, view.role_names)
    refused = dict(access_roles.refusals(guild, [r.id for r in view.roles]))
    return [
        {"id": r.id, "name": view.role_names.get(r.id, r.id), "refused": r.id in refused}
        for r in view.roles
    ]


def _duration_form(variation: Variation) -> dict[str, Any]:
    days = variation.duration_days
    if days is None:
        return {"duration": "", "duration_days": ""}
    if days in access_roles.DURATION_PRESETS:
        return {"duration": str(days), "duration_days": ""}
    return {"duration": "custom", "duration_days": str(days)}


async def access_context(
    variation: Variation,
    aform: dict[str, Any] | None = None,
    aerrors: dict[str, str] | None = None,
    *,
    fresh: bool = False,
) -> dict[str, Any]:
    """What `portal/_variation_access.html` needs (the variation page includes it)."""
    view, read_error = await store_guild(fresh=fresh)
    chosen = aform["role_ids"] if aform else list(variation.role_ids or [])
    names = view.role_names if view else {}
    return {
        "access_roles": picker(view),
        "access_read_error": read_error,
        "access_chosen": chosen,
        "access_chosen_names": [names.get(r, r) for r in chosen],
        "aform": aform or _duration_form(variation),
        "aerrors": aerrors or {},
        "duration_presets": access_roles.DURATION_PRESETS,
        "duration_max": access_roles.DURATION_MAX_DAYS,
        "max_roles": access_roles.MAX_ROLES,
    }


@bp.post("/variations/<int:variation_id>/access")
@store_required
async def save_access(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    form = await request.form
    role_values = form.getlist("role_ids")
    view, _read_error = await store_guild(fresh=True)
    errors = await access_roles.save_variation_access(
        variation, form, role_values, guild_roles(view), actor()
    )
    if errors:
        shown = {
            "role_ids": [str(v)[:21] for v in role_values[: access_roles.MAX_ROLES * 4]],
            "duration": (form.get("duration") or "")[:10],
            "duration_days": (form.get("duration_days") or "")[:10],
        }
        main = {
            "name": variation.name,
            "price": cents_to_input(variation.price_cents),
            "active": "on" if variation.active else "",
        }
        context = await access_context(variation, shown, form_errors(errors))
        return await render(
            "portal/variation_form.html",
            status=400,
            variation=variation,
            form=main,
            errors={},
            **context,
        )
    await say("subs.variation.saved")
    return redirect(url_for("catalog.edit_variation", variation_id=variation.id) + "#access")

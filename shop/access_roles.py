"""Roles and duration of a variation (issue 16): what a purchase grants in the store's guild.

The portal reads the guild through the store's bot and hands it in as `GuildRoles`; this
module parses the form (bounded before parsing), refuses every role the bot could not give
(`@everyone`, a role managed by an integration or a bot, a role at or above the bot's highest
role, a bot without Manage Roles) with the reason, and writes and audits the variation. The
hierarchy rule is `shop.bot_requirements` (Discord's documented one), not repeated here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core import audit
from shop import inputs
from shop.access import MAX_ROLES as MAX_ROLES  # roles a variation or hand grant may give
from shop.bot_requirements import Choices, GuildSnapshot, check
from shop.catalog import Errors
from shop.models import Variation

DURATION_MAX_DAYS = 3650
DURATION_PRESETS = (7, 30, 90)
SNOWFLAKE_MAX = 21
_SNOWFLAKE = re.compile(r"[0-9]{15,21}")  # ASCII digits only


@dataclass(frozen=True)
class GuildRoles:
    """The store's guild as the bot sees it (read by the caller) and the roles' names."""

    snapshot: GuildSnapshot
    names: Mapping[str, str]

    def name(self, role_id: str) -> str:
        return self.names.get(role_id, role_id)


def parse_role_ids(values: Sequence[object], errors: Errors, field: str = "role_ids") -> list[str]:
    """The role ids of a multi-select, deduplicated in order; at most `MAX_ROLES`, each a
    snowflake (checked before anything else looks at it)."""
    picked: list[str] = []
    for raw in values[: MAX_ROLES * 4]:  # a forged form cannot make us walk a long list
        value = str(raw or "")[: SNOWFLAKE_MAX + 1].strip()
        if not value:
            continue
        if not _SNOWFLAKE.fullmatch(value):
            errors[field] = ("portal.error.snowflake", {})
            return []
        if value not in picked:
            picked.append(value)
    if len(picked) > MAX_ROLES or len(values) > MAX_ROLES * 4:
        errors[field] = ("subs.role.too_many", {"max": MAX_ROLES})
        return []
    return picked


def parse_days(raw: object, errors: Errors, field: str) -> int | None:
    """A number of days 1..`DURATION_MAX_DAYS`; None (and an error) when it is not one."""
    try:
        return inputs.parse_quantity(str(raw or ""), lo=1, hi=DURATION_MAX_DAYS)
    except inputs.InvalidInput:
        errors[field] = ("portal.error.between", {"lo": 1, "hi": DURATION_MAX_DAYS})
        return None


def parse_duration(form: Mapping[str, str], errors: Errors) -> int | None:
    """`duration`: '' (for good), a preset, or 'custom' with `duration_days`."""
    choice = (form.get("duration") or "")[:10].strip()
    if not choice:
        return None
    if choice == "custom":
        return parse_days(form.get("duration_days"), errors, "duration_days")
    if choice.isascii() and choice.isdigit() and int(choice) in DURATION_PRESETS:
        return int(choice)
    errors["duration"] = ("subs.duration.invalid", {})
    return None


def refusals(guild: GuildRoles, role_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(role id, reason code) for every role the bot could not give; empty when all can be.
    Codes: everyone, unknown, managed, manage_roles (once), role_too_high."""
    snap = guild.snapshot
    out: list[tuple[str, str]] = []
    for role_id in role_ids:
        role = snap.roles.get(role_id)
        if role_id == snap.guild_id:
            out.append((role_id, "everyone"))
        elif role is None:
            out.append((role_id, "unknown"))
        elif role.managed:
            out.append((role_id, "managed"))
        else:
            for problem in check(snap, Choices(buyer_role_id=role_id)):
                if problem.code == "manage_roles" and any(c == "manage_roles" for _, c in out):
                    continue
                out.append((role_id, problem.code))
    return out


def check_roles(
    guild: GuildRoles | None,
    role_ids: Sequence[str],
    errors: Errors,
    *,
    unchanged: bool = False,
    field: str = "role_ids",
) -> None:
    """Add an error naming the first refused role (or that Discord could not be read while
    the roles change) to `errors`."""
    if not role_ids or field in errors:
        return
    if guild is None:
        if not unchanged:
            errors[field] = ("subs.role.unreadable", {})
        return
    found = refusals(guild, role_ids)
    if found:
        role_id, code = found[0]
        bot_role = _bot_role_name(guild)
        errors[field] = (f"subs.role.{code}", {"role": guild.name(role_id), "bot_role": bot_role})


def _bot_role_name(guild: GuildRoles) -> str:
    snap = guild.snapshot
    ranked = sorted(
        (snap.roles[r] for r in snap.bot_roles if r in snap.roles), key=lambda r: -r.position
    )
    return guild.name(ranked[0].id) if ranked else "?"


def access_of(variation: Variation) -> dict[str, Any]:
    """What the audit log keeps of a variation's access settings."""
    return {"role_ids": list(variation.role_ids or []), "duration_days": variation.duration_days}


async def save_variation_access(
    variation: Variation,
    form: Mapping[str, str],
    role_values: Sequence[object],
    guild: GuildRoles | None,
    actor: str,
) -> Errors:
    """Set the roles a variation grants and its duration; the errors (nothing is saved when
    there are any). `guild` None: Discord could not be read, so only unchanged roles pass."""
    errors: Errors = {}
    role_ids = parse_role_ids(role_values, errors)
    duration = parse_duration(form, errors)
    unchanged = sorted(role_ids) == sorted(variation.role_ids or [])
    check_roles(guild, role_ids, errors, unchanged=unchanged)
    if errors:
        return errors
    before = access_of(variation)
    variation.role_ids = role_ids
    variation.duration_days = duration
    await variation.save(update_fields=["role_ids", "duration_days", "updated_at"])
    await audit.record(
        actor,
        "variation.access_updated",
        "variation",
        variation.id,
        tenant_id=variation.tenant_id,
        before=before,
        after=access_of(variation),
    )
    return {}

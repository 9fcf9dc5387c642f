"""Staff actions on accesses (issue 16): grant by hand, extend, revoke; each audited.

A staff action only changes the `AccessGrant` row and makes it due now (`next_due_at`); the
access engine (`shop.access`) then adds or removes the roles on Discord, so the portal never
calls Discord to change roles and a crash between the two loses nothing. Writes are
conditional on the state the caller saw (the engine may end an access at the same moment):
a lost race is `AccessChanged`, never a silent overwrite. Callers pass grants already loaded
with their store's id; the role ids were checked by `shop.access_roles.check_roles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core import audit
from shop.access import due_now
from shop.access_plan import reminder_stamps
from shop.access_roles import DURATION_MAX_DAYS, MAX_ROLES
from shop.errors import InvalidStateChange, ShopError
from shop.models import AccessGrant, AccessStatus, Tenant, Variation

STAFF_REASON = "staff"


class AccessChanged(ShopError):
    """The access changed between the page and the click (renewed, ended, revoked)."""

    code = "access_changed"
    message_key = "subs.error.changed"


class NoStoreGuild(ShopError):
    code = "no_store_guild"
    message_key = "subs.error.no_guild"


class AlreadyActive(ShopError):
    code = "access_already_active"
    message_key = "subs.error.already_active"


def snapshot(grant: AccessGrant) -> dict[str, Any]:
    """What the audit log keeps of an access."""
    return {
        "buyer": grant.buyer_discord_id,
        "variation_id": grant.variation_id,
        "role_ids": list(grant.role_ids or []),
        "status": str(grant.status),
        "ends_at": grant.ends_at,
        "ended_reason": grant.ended_reason,
    }


def _days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= DURATION_MAX_DAYS:
        raise ValueError(f"days must be 1..{DURATION_MAX_DAYS}")
    return days


async def grant(
    tenant: Tenant,
    buyer_discord_id: str,
    role_ids: Sequence[str],
    days: int | None,
    actor: str,
    *,
    variation: Variation | None = None,
    now: datetime | None = None,
) -> AccessGrant:
    """Give a member roles by hand, for `days` or for good (`days` None). With a variation,
    a buyer who already holds an active access to it is refused (extend that one instead)."""
    now = now or datetime.now(UTC)
    if not tenant.guild_id:
        raise NoStoreGuild("the store has no server")
    if not role_ids or len(role_ids) > MAX_ROLES:
        raise ValueError(f"1..{MAX_ROLES} roles")
    if variation is not None:
        if variation.tenant_id != tenant.id:  # the caller loads it with the store's id
            raise ValueError("a variation of another store")
        active = AccessGrant.filter(
            tenant_id=tenant.id,
            buyer_discord_id=buyer_discord_id,
            variation_id=variation.id,
            status=AccessStatus.ACTIVE,
        )
        if await active.exists():
            raise AlreadyActive("an active access to this variation exists")
    length = _days(days)
    ends_at = now + timedelta(days=length) if length else None
    row = await AccessGrant.create(
        tenant_id=tenant.id,
        variation_id=variation.id if variation else None,
        buyer_discord_id=buyer_discord_id,
        guild_id=tenant.guild_id,
        role_ids=list(role_ids),
        status=AccessStatus.ACTIVE,
        starts_at=now,
        ends_at=ends_at,
        **reminder_stamps(ends_at, now),
        **due_now(now),  # the engine adds the roles
    )
    await audit.record(
        actor, "access.granted", "access", row.id, tenant_id=tenant.id, after=snapshot(row)
    )
    return row


async def _conditional_update(grant: AccessGrant, **values: Any) -> None:
    """Write `values` only if the row is still as `grant` shows it; `AccessChanged` if not."""
    query = AccessGrant.filter(id=grant.id, tenant_id=grant.tenant_id, status=grant.status)
    query = (
        query.filter(ends_at=grant.ends_at) if grant.ends_at else query.filter(ends_at__isnull=True)
    )
    if not await query.update(**values):
        raise AccessChanged(f"access {grant.id} changed meanwhile")
    for name, value in values.items():
        setattr(grant, name, value)


async def extend(
    grant: AccessGrant, days: int, actor: str, *, now: datetime | None = None
) -> AccessGrant:
    """Add `days` to a timed access: an active one from its current end, an ended one from
    now (it becomes active again and its roles are given back). A revoked access (refund,
    chargeback, staff) is not reopened: grant a new one."""
    now = now or datetime.now(UTC)
    length = _days(days) or 0
    before = snapshot(grant)
    if grant.status == AccessStatus.ACTIVE:
        if grant.ends_at is None:
            raise InvalidStateChange("a for-good access has no end to extend")
        values: dict[str, Any] = {"ends_at": max(grant.ends_at, now) + timedelta(days=length)}
    elif grant.status == AccessStatus.ENDED:
        values = {
            "status": AccessStatus.ACTIVE,
            "ends_at": now + timedelta(days=length),
            "ended_reason": "",
            "roles_applied_at": None,  # owed again: the engine adds them
            "roles_removed_at": None,
        }
    else:
        raise InvalidStateChange(f"access {grant.id} is {grant.status}")
    values.update(reminder_stamps(values["ends_at"], now), **due_now(now))
    await _conditional_update(grant, **values)
    await audit.record(
        actor,
        "access.extended",
        "access",
        grant.id,
        tenant_id=grant.tenant_id,
        before=before,
        after={**snapshot(grant), "days": length},
    )
    return grant


async def revoke(grant: AccessGrant, actor: str, *, now: datetime | None = None) -> AccessGrant:
    """End an active access now; the engine removes its roles (keeping any another active
    access of the same member holds)."""
    now = now or datetime.now(UTC)
    if grant.status != AccessStatus.ACTIVE:
        raise InvalidStateChange(f"access {grant.id} is {grant.status}")
    before = snapshot(grant)
    await _conditional_update(
        grant,
        status=AccessStatus.REVOKED,
        ended_reason=STAFF_REASON,
        ends_at=now,  # when it ended, for the subscribers' history
        roles_removed_at=None,
        **due_now(now),
    )
    await audit.record(
        actor,
        "access.revoked",
        "access",
        grant.id,
        tenant_id=grant.tenant_id,
        before=before,
        after=snapshot(grant),
    )
    return grant

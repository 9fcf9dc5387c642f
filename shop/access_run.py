"""Running due access work (issue 16): the store's worker claims its due grants and brings
Discord in line with them. Rules (`shop.access` has the contract, `shop.access_plan` the
pure decisions):

* ACTIVE with `roles_applied_at` NULL: add its roles (a buyer not in the guild: tried again
  at the next periodic check, which is also how a rejoin gets its roles back).
* ACTIVE whose `ends_at` passed: ENDED (`ended_reason='expired'`, audited), then as below.
* ENDED/REVOKED with `roles_removed_at` NULL: remove its roles, **except a role another
  ACTIVE grant of the same buyer in the same store also holds** (and the store's buyer role,
  a `store_role` row, while the buyer has a delivered order in the store).
* ACTIVE: the reminder owed 3 days and 1 day before `ends_at` (stamped before it is sent, so
  it is sent at most once; a refused DM is not retried), and every `recheck` a look at the
  member: roles they lost (left and rejoined, removed by hand) are added back.
* Then the next `next_due_at` (or NULL), written only while the claim is still ours.

Exactly once across processes: `claim_due` takes a grant with a conditional UPDATE (a fresh
token, `next_due_at` pushed `hold_s` ahead); a worker that dies gives it back when the hold
runs out. Every write after the claim is conditional on the token, and any other writer
clears it (`shop.access.due_now`), so a stale worker changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import audit
from shop.access_plan import Reminder, Times, next_due, reminder_due, retry_after
from shop.access_revoke import still_a_buyer
from shop.models import AccessGrant, AccessStatus
from shop.notify.claims import claim_due

log = logging.getLogger(__name__)
ACTOR = "system:access"
BATCH = 20
RECHECK = timedelta(hours=1)  # how often an ACTIVE holder's roles are looked at (rejoins)
HOLD_S = 120.0  # a claimed grant returns to the pool this long after a worker died with it
ENDING = (AccessStatus.ENDED, AccessStatus.REVOKED)


class RoleResult(StrEnum):
    OK = "ok"  # done (or it already was)
    NOT_MEMBER = "not_member"  # 10007 Unknown Member: not in the guild (left)
    UNKNOWN_ROLE = "unknown_role"  # 10011: the seller deleted the role
    REFUSED = "refused"  # 403 50013: Manage Roles missing, or the role above the bot's
    FAILED = "failed"  # anything else (Discord down): tried again later


class AccessDiscord(Protocol):
    """What the engine needs from Discord; the worker implements it with the bot's REST."""

    async def add_role(self, grant: AccessGrant, role_id: str) -> RoleResult: ...

    async def remove_role(self, grant: AccessGrant, role_id: str) -> RoleResult: ...

    async def member_roles(self, grant: AccessGrant) -> set[str] | None:
        """The member's role ids; None when they are not in the guild."""
        ...

    async def remind(self, grant: AccessGrant, which: Reminder) -> str:
        """Send the reminder; the path it took (dm, channel, log, failed)."""
        ...


@dataclass
class RunReport:
    claimed: int = 0
    added: int = 0
    removed: int = 0
    kept: int = 0  # roles left in place because another active grant holds them
    expired: int = 0
    reminded: int = 0
    lost_claims: int = 0


async def run_due(
    tenant_id: int,
    discord: AccessDiscord,
    *,
    now: datetime | None = None,
    recheck: timedelta = RECHECK,
    batch: int = BATCH,
    hold_s: float = HOLD_S,
) -> RunReport:
    """Claim and process the due grants of one store (at most `batch`)."""
    now = now or datetime.now(UTC)
    report = RunReport()
    grants = await claim_due(
        AccessGrant,
        "next_due_at",
        "claim",
        now,
        batch=batch,
        hold_s=hold_s,
        where={"tenant_id": tenant_id},
    )
    report.claimed = len(grants)
    for grant in grants:
        try:
            await process(grant, discord, now, recheck, report)
        except Exception:  # noqa: BLE001 - one grant's failure never blocks the others
            log.exception("access grant %s: processing failed; the hold returns it", grant.id)
    return report


async def _write(grant: AccessGrant, token: str | None, **changes: Any) -> bool:
    """Apply `changes` only while `token` still holds the grant and its status is the one we
    acted on; False if someone else changed it meanwhile (a renewal, a revocation, staff: they
    clear the claim or move the status) — then we stop, and the next claim sees the change."""
    changes.setdefault("updated_at", datetime.now(UTC))
    done = await AccessGrant.filter(id=grant.id, claim=token, status=grant.status).update(**changes)
    return bool(done)


async def process(
    grant: AccessGrant,
    discord: AccessDiscord,
    now: datetime,
    recheck: timedelta,
    report: RunReport,
) -> None:
    """Bring Discord in line with one claimed grant, then schedule it."""
    token = grant.claim
    if grant.status == AccessStatus.ACTIVE and grant.ends_at is not None and grant.ends_at <= now:
        if not await _expire(grant, token):
            report.lost_claims += 1
            return
        grant.status, report.expired = AccessStatus.ENDED, report.expired + 1
    if grant.status in ENDING:
        await _remove_roles(grant, token, discord, now, report)
        return
    await _active(grant, token, discord, now, recheck, report)


async def _expire(grant: AccessGrant, token: str | None) -> bool:
    async with in_transaction() as conn:
        done = await (
            AccessGrant.filter(
                id=grant.id, claim=token, status=AccessStatus.ACTIVE, ends_at__lte=grant.ends_at
            )
            .using_db(conn)
            .update(status=AccessStatus.ENDED, ended_reason="expired")
        )
        if done:
            await audit.record(
                ACTOR,
                "access.expired",
                "access",
                grant.id,
                tenant_id=grant.tenant_id,
                before={"status": str(AccessStatus.ACTIVE)},
                after={"status": str(AccessStatus.ENDED), "ends_at": str(grant.ends_at)},
                using_db=conn,
            )
    return bool(done)


async def roles_held_elsewhere(grant: AccessGrant, now: datetime) -> set[str]:
    """Roles of `grant` that another ACTIVE, unexpired grant of the same buyer in the same
    store holds too: removing them would take away access still paid for."""
    others = await AccessGrant.filter(
        tenant_id=grant.tenant_id,
        buyer_discord_id=grant.buyer_discord_id,
        status=AccessStatus.ACTIVE,
    ).exclude(id=grant.id)
    held: set[str] = set()
    for other in others:
        if other.ends_at is None or other.ends_at > now:
            held.update(other.role_ids)
    return held & set(grant.role_ids)


async def _remove_roles(
    grant: AccessGrant,
    token: str | None,
    discord: AccessDiscord,
    now: datetime,
    report: RunReport,
) -> None:
    kept = await roles_held_elsewhere(grant, now)
    if grant.store_role and await still_a_buyer(grant):  # another delivered order: it stays
        kept = set(grant.role_ids)
    results = {
        role: await discord.remove_role(grant, role) for role in grant.role_ids if role not in kept
    }
    report.kept += len(kept)
    gone = (RoleResult.OK, RoleResult.NOT_MEMBER, RoleResult.UNKNOWN_ROLE)
    report.removed += sum(1 for r in results.values() if r == RoleResult.OK)
    failed = _failures(results.items(), gone)
    if failed:
        await _retry(grant, token, now, failed)
        return
    if not await _write(
        grant,
        token,
        roles_removed_at=now,
        next_due_at=None,
        claim=None,
        attempts=0,
        last_error=None,
    ):
        report.lost_claims += 1


async def _active(
    grant: AccessGrant,
    token: str | None,
    discord: AccessDiscord,
    now: datetime,
    recheck: timedelta,
    report: RunReport,
) -> None:
    applied = grant.roles_applied_at
    check_due = applied is not None and applied + recheck <= now
    if not grant.role_ids:  # a timed access without roles: reminders and expiry only
        applied = applied or now
    elif applied is None or check_due:
        outcome = await _apply_roles(grant, discord, report, only_missing=check_due)
        if outcome is None:
            await _retry(grant, token, now, grant.last_error or "refused")
            return
        # False: not in the guild (left, or never joined): looked at again in `recheck`
        applied = now if outcome else None
    times = Times(grant.ends_at, grant.reminded_3d_at, grant.reminded_1d_at, applied)
    which = reminder_due(times, now)
    if which is not None:
        stamps = {"reminded_1d_at": now} if which == Reminder.DAYS_1 else {}
        if which == Reminder.DAYS_3 or grant.reminded_3d_at is None:
            stamps["reminded_3d_at"] = now  # a 1-day reminder also settles the 3-day one
        if not await _write(grant, token, **stamps):  # stamped first: sent at most once
            report.lost_claims += 1
            return
        path = await discord.remind(grant, which)
        log.info("access grant %s: %s reminder sent by %s", grant.id, which, path)
        report.reminded += 1
        times = Times(
            grant.ends_at,
            stamps.get("reminded_3d_at", grant.reminded_3d_at),
            stamps.get("reminded_1d_at", grant.reminded_1d_at),
            applied,
        )
    if not await _write(
        grant,
        token,
        roles_applied_at=applied,
        next_due_at=next_due(times, now, recheck if grant.role_ids else None),
        claim=None,
        attempts=0,
        last_error=None,
    ):
        report.lost_claims += 1


async def _apply_roles(
    grant: AccessGrant, discord: AccessDiscord, report: RunReport, *, only_missing: bool
) -> bool | None:
    """Add the grant's roles (only those the member lacks, for a periodic check). True: all
    held; False: not in the guild; None: Discord refused one (noted in `last_error`)."""
    roles = list(grant.role_ids)
    if only_missing:
        held = await discord.member_roles(grant)
        if held is None:
            return False
        roles = [r for r in roles if r not in held]
    results = {role: await discord.add_role(grant, role) for role in roles}
    if any(r == RoleResult.NOT_MEMBER for r in results.values()):
        return False
    report.added += sum(1 for r in results.values() if r == RoleResult.OK)
    # a role the seller deleted (10011) cannot be given: nothing to retry
    failed = _failures(results.items(), (RoleResult.OK, RoleResult.UNKNOWN_ROLE))
    if failed:
        grant.last_error = failed
        return None
    return True


def _failures(results: Iterable[tuple[str, RoleResult]], fine: tuple[RoleResult, ...]) -> str:
    return ", ".join(f"{role}: {r}" for role, r in results if r not in fine)


async def _retry(grant: AccessGrant, token: str | None, now: datetime, error: str) -> None:
    """A role change Discord refused or failed: back off (1 min doubling to 1 h), keep the
    reason for the seller's pages and the logs."""
    attempts = grant.attempts + 1
    log.warning("access grant %s: role change failed (%s), attempt %d", grant.id, error, attempts)
    due = now + retry_after(attempts)
    if grant.status == AccessStatus.ACTIVE and grant.ends_at is not None and grant.ends_at > now:
        due = min(due, grant.ends_at)  # the back-off never delays the end
    await _write(
        grant,
        token,
        next_due_at=due,
        claim=None,
        attempts=F("attempts") + 1,
        last_error=error[:500],
    )

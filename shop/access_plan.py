"""Pure decisions about one access grant: which reminder is owed now and when it is due next.

No database and no Discord here (`shop.access_run` does the effects), so the rules are easy
to test with hypothesis: a reminder is sent at most once per period, never for a point the
period started after, and the next due time is never in the past of what is still owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

REMIND_3D = timedelta(days=3)
REMIND_1D = timedelta(days=1)
RETRY_FIRST = timedelta(minutes=1)  # a role change Discord refused: first retry
RETRY_MAX = timedelta(hours=1)  # ... doubling up to this (the seller is told in the log)


class Reminder(StrEnum):
    DAYS_3 = "3d"
    DAYS_1 = "1d"


@dataclass(frozen=True)
class Times:
    """What the plan reads from a grant (ACTIVE ones only)."""

    ends_at: datetime | None
    reminded_3d_at: datetime | None
    reminded_1d_at: datetime | None
    roles_applied_at: datetime | None


def reminders_already_past(ends_at: datetime | None, now: datetime) -> tuple[bool, bool]:
    """(skip 3 d, skip 1 d) for a period starting `now`: a 2-day pass gets no "3 days left"
    reminder the moment it is bought."""
    if ends_at is None:
        return False, False
    left = ends_at - now
    return left <= REMIND_3D, left <= REMIND_1D


def reminder_stamps(ends_at: datetime | None, now: datetime) -> dict[str, Any]:
    """A period's reminder stamps from `now`: owed (None) again, except those already past
    (stamped `now`, so a 2-day period gets no "3 days left" message)."""
    skip_3d, skip_1d = reminders_already_past(ends_at, now)
    return {"reminded_3d_at": now if skip_3d else None, "reminded_1d_at": now if skip_1d else None}


def reminder_due(times: Times, now: datetime) -> Reminder | None:
    """The reminder to send now, if any: the 1-day one wins when both are owed (a worker that
    was down for days sends one message, not two)."""
    if times.ends_at is None or times.ends_at <= now:
        return None
    left = times.ends_at - now
    if left <= REMIND_1D and times.reminded_1d_at is None:
        return Reminder.DAYS_1
    if left <= REMIND_3D and times.reminded_3d_at is None:
        return Reminder.DAYS_3
    return None


def next_due(times: Times, now: datetime, recheck: timedelta | None) -> datetime | None:
    """When an ACTIVE grant needs its worker again: the next reminder, its end, or the
    periodic check that its holder still has the roles (`recheck` after the last one; None
    for a grant without roles); None when nothing is owed (a permanent grant, no roles)."""
    candidates: list[datetime] = []
    if times.ends_at is not None:
        candidates.append(times.ends_at)
        if times.reminded_3d_at is None:
            candidates.append(times.ends_at - REMIND_3D)
        if times.reminded_1d_at is None:
            candidates.append(times.ends_at - REMIND_1D)
    if recheck is not None:
        candidates.append((times.roles_applied_at or now) + recheck)
    return max(now, min(candidates)) if candidates else None


def retry_after(attempts: int) -> timedelta:
    """Back-off after `attempts` refused role changes in a row (1 min doubling to 1 h)."""
    factor: int = 2 ** min(max(attempts - 1, 0), 10)
    return min(RETRY_MAX, RETRY_FIRST * factor)

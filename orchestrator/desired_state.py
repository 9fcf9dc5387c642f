"""Desired state (database) vs actual state (processes + Redis): what to do for one instance.

`plan()` is pure. `load_desired()` reads the database; `ChangeFeed` finds the instances whose
desired state may have changed since the last pass without reading them all:

* the dirty set `keys.INSTANCES_DIRTY` (the web tier calls `fleet.control_protocol.mark_dirty`),
* `bot_instances.updated_at` newer than the last pass (token saved, settings, suspension),
* the set of instances whose owner account is blocked, compared with the previous pass
  (accounts have no `updated_at`, so blocking/unblocking is seen through this small set).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import redis.asyncio as aioredis

from fleet import keys
from fleet.models import BotInstance
from fleet.states import DesiredState, InstanceState


class Why(StrEnum):
    SUSPENDED = "suspended"
    BLOCKED = "blocked"
    STOPPED = "stopped"  # the tenant turned it off
    DELETED = "deleted"


@dataclass(frozen=True)
class Desired:
    instance_id: int
    tenant_id: int
    run: bool
    why_not: Why | None
    config_version: int
    suspension_reason: str | None = None

    @property
    def rest_state(self) -> InstanceState:
        """The state of this instance when it is not running on purpose."""
        return InstanceState.SUSPENDED if self.why_not == Why.SUSPENDED else InstanceState.STOPPED


class Step(StrEnum):
    NONE = "none"
    START = "start"
    STOP = "stop"  # stop the process; it then rests in `Desired.rest_state`
    RESTART = "restart"  # stop and start again at once (config changed)
    REST = "rest"  # no process: just write the resting state


@dataclass(frozen=True)
class Actual:
    alive: bool
    state: InstanceState | None
    config_version: int | None = None
    next_start_at: float | None = None


def plan(desired: Desired | None, actual: Actual, now: float, drained: bool = False) -> Step:
    """One decision for one instance; the caller applies it."""
    if desired is None or not desired.run:
        if actual.alive:
            return Step.STOP
        rest = InstanceState.STOPPED if desired is None else desired.rest_state
        keep = {rest, None} if desired is None else {rest}
        if actual.state == InstanceState.ERROR and rest == InstanceState.STOPPED:
            return Step.NONE  # keep the lastError visible; it is not running either way
        return Step.NONE if actual.state in keep else Step.REST
    if drained:
        return Step.STOP if actual.alive else Step.NONE
    if actual.alive:
        stale = actual.config_version is not None and actual.config_version < desired.config_version
        return Step.RESTART if stale else Step.NONE
    if actual.state == InstanceState.ERROR:
        fixed = actual.config_version is None or actual.config_version < desired.config_version
        return Step.START if fixed else Step.NONE
    if actual.state in (InstanceState.BACKOFF, InstanceState.CRASHLOOP):
        if actual.next_start_at is not None and actual.next_start_at > now:
            return Step.NONE  # its timer starts it
    return Step.START


def _desired(row: dict[str, Any]) -> Desired:
    why: Why | None = None
    if row["suspended"]:
        why = Why.SUSPENDED
    elif row["tenant__owner__blocked"]:
        why = Why.BLOCKED
    elif row["desired_state"] != DesiredState.RUNNING:
        why = Why.STOPPED
    return Desired(
        instance_id=int(row["id"]),
        tenant_id=int(row["tenant_id"]),
        run=why is None,
        why_not=why,
        config_version=int(row["config_version"]),
        suspension_reason=row.get("suspension_reason"),
    )


async def load_desired(ids: Iterable[int] | None = None) -> dict[int, Desired]:
    """Desired state of the given instances (all when `ids` is None), one query."""
    query = BotInstance.all() if ids is None else BotInstance.filter(id__in=list(ids))
    rows = await query.values(
        "id",
        "tenant_id",
        "desired_state",
        "suspended",
        "suspension_reason",
        "config_version",
        "tenant__owner__blocked",
    )
    return {int(r["id"]): _desired(r) for r in rows}


class ChangeFeed:
    """Instance ids whose desired state may have changed since the previous call."""

    SLACK = dt.timedelta(seconds=2)  # commits land out of order; re-reading a few is harmless
    DIRTY_BATCH = 1000

    def __init__(self) -> None:
        self.watermark: dt.datetime | None = None
        self.blocked: set[int] | None = None

    async def prime(self) -> None:
        """Start from now (called after a full pass)."""
        self.watermark = dt.datetime.now(dt.UTC)
        self.blocked = await self._blocked()

    @staticmethod
    async def _blocked() -> set[int]:
        # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
        ids = cast(
            list[int],
            await BotInstance.filter(tenant__owner__blocked=True).values_list("id", flat=True),
        )
        return {int(i) for i in ids}

    async def dirty(self, redis: aioredis.Redis) -> set[int]:
        popped = await redis.spop(keys.INSTANCES_DIRTY, self.DIRTY_BATCH)
        return {int(i) for i in popped or () if str(i).isdigit()}

    async def changed(self) -> set[int]:
        """From the database: edited instances and owners blocked or unblocked."""
        now = dt.datetime.now(dt.UTC)
        since = (self.watermark or now) - self.SLACK
        # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
        edited = cast(
            list[int],
            await BotInstance.filter(updated_at__gte=since).values_list("id", flat=True),
        )
        ids = {int(i) for i in edited}
        blocked = await self._blocked()
        if self.blocked is not None:
            ids |= blocked ^ self.blocked
        self.blocked = blocked
        self.watermark = now
        return ids

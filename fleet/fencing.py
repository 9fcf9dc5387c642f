"""Fencing checked by the system of record: each instance's highest token lives in the database.

The Redis lease (`fleet.leases`) says who should run a bot; it cannot stop a process that is
paused or cut off from Redis from acting between two of its checks, and a Redis that restarts
empty (or fails over to a replica that missed the last INCR) can hand out a token that is not
larger than the last one. So the database keeps `FenceMark(instance_id, token)`:

* `check(conn, fence)` runs first in the caller's transaction (the writes of a bot's owner:
  claiming an order for delivery, allocating its stock, marking it delivered, recording the
  bot's facts). It raises the mark to the caller's token, or raises `FencedOut` when a larger
  one was seen. One upsert: on PostgreSQL the mark's row stays locked until the caller
  commits, so a newer owner's claim waits for, or is ordered before, the whole write; SQLite
  serialises writers anyway (`BEGIN IMMEDIATE`). Taken first in every fenced transaction, the
  row is never waited for while holding another lock, so it adds no deadlock.
* `acquire(book, instance_id)` is how a node takes a lease: the grant's token is made larger
  than the mark (the Redis counter is raised to it when it restarted empty) and then claimed
  in the database with a strictly larger-than test, so two grants can never share a token and
  the previous owner is fenced off from that moment, not only at its next heartbeat. The grant
  waits at most `CLAIM_WAIT_S` for the database (starting a bot needs Redis only).

A `Fence` of None (the web tier, the reconciler: not a bot's owner) checks nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from fleet.errors import FencedOut
from fleet.leases import Lease, LeaseBook
from fleet.models import FenceMark

__all__ = [
    "Fence",
    "FencedOut",
    "acquire",
    "check",
    "claim",
    "high_water",
    "note_refusal",
    "refusals",
]

ACQUIRE_ATTEMPTS = 3
CLAIM_WAIT_S = 1.0  # a grant waits this long for the database, then goes on without it

log = logging.getLogger("fleet.fencing")
_T = TypeVar("_T")
_late: set[asyncio.Task[Any]] = set()  # reads and claims finishing in the background

# ON CONFLICT ... DO UPDATE ... WHERE: PostgreSQL 9.5+, SQLite 3.24+; RETURNING: SQLite 3.35+.
# A row comes back only when the mark was inserted or raised (or kept, for `<=`).
_UPSERT = (
    "INSERT INTO fence_marks (instance_id, token, refused) VALUES ({i}, {t}, 0) "
    "ON CONFLICT (instance_id) DO UPDATE SET token = excluded.token "
    "WHERE fence_marks.token {op} excluded.token RETURNING token"
)


@dataclass(frozen=True)
class Fence:
    """The fencing token a bot's owner carries into its writes."""

    instance_id: int
    token: int

    @classmethod
    def from_lease(cls, instance_id: int, lease: str | None) -> Fence | None:
        """The fence of a worker started with lease `"node:token"` (None: no lease)."""
        held = Lease.parse(lease)
        return cls(instance_id, held.token) if held is not None else None


def _client(conn: Any) -> Any:
    return conn if conn is not None else connections.get("default")


async def _upsert(conn: Any, instance_id: int, token: int, strict: bool) -> bool:
    client = _client(conn)
    pg = client.capabilities.dialect == "postgres"
    sql = _UPSERT.format(i="$1" if pg else "?", t="$2" if pg else "?", op="<" if strict else "<=")
    # execute_query_dict: tortoise's asyncpg execute_query drops an INSERT's RETURNING rows
    return bool(await client.execute_query_dict(sql, [instance_id, token]))


async def _seen(conn: Any, instance_id: int) -> int:
    mark = await FenceMark.filter(instance_id=instance_id).using_db(conn).first()
    return int(mark.token) if mark is not None else 0


async def check(conn: Any, fence: Fence | None) -> None:
    """Inside the caller's transaction, before its writes: raise the instance's mark to the
    fence's token, or raise `FencedOut` (the caller's transaction then rolls back) when a
    larger token was seen. No-op for `fence=None`."""
    if fence is None:
        return
    if not await _upsert(conn, fence.instance_id, fence.token, strict=False):
        raise FencedOut(fence.instance_id, fence.token, await _seen(conn, fence.instance_id))


async def claim(instance_id: int, token: int) -> None:
    """A new grant's token becomes the mark (its own transaction); `FencedOut` when the mark
    is already this large (a Redis counter that went backwards handed the token out again)."""
    async with in_transaction() as conn:
        if not await _upsert(conn, instance_id, token, strict=True):
            raise FencedOut(instance_id, token, await _seen(conn, instance_id))


async def high_water(instance_id: int) -> int:
    """The largest token the database has seen for the instance (0: none yet)."""
    return await _seen(None, instance_id)


async def _bounded(work: Awaitable[_T], wait: float) -> asyncio.Task[_T] | None:
    """Run `work`, waiting at most `wait` s: the finished task, or None (it goes on in the
    background; a database locked for maintenance must not hold up starts, see `acquire`)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=wait)
    if done:
        return task
    _late.add(task)
    task.add_done_callback(_finished_late)
    return None


def _finished_late(task: asyncio.Task[Any]) -> None:
    _late.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("late fencing step failed: %s", task.exception())


async def _floor(instance_id: int, wait: float) -> int:
    task = await _bounded(high_water(instance_id), wait)
    if task is None or task.exception() is not None:
        log.warning("instance %s: fencing mark not read; the grant claims it instead", instance_id)
        return 0
    return task.result()


async def acquire(
    book: LeaseBook, instance_id: int, wait: float = CLAIM_WAIT_S
) -> tuple[Lease | None, Lease | None]:
    """Take the instance's lease with a token larger than any the database has seen, and
    claim it there: (granted, None) or (None, the other node's lease). A grant the database
    refuses (the counter went backwards meanwhile) is released and taken again above the
    mark; `FencedOut` after `ACQUIRE_ATTEMPTS` refusals.

    Starting a bot needs Redis, not the database: a read or claim that takes over `wait` s
    (a database locked for maintenance) or fails goes on, or is given up, in the background
    and the grant stands. Nothing is lost: the worker's own writes check its token."""
    floor = await _floor(instance_id, wait)
    for attempt in range(ACQUIRE_ATTEMPTS):
        lease, other = await book.acquire(instance_id, floor=floor)
        if lease is None:
            return None, other
        task = await _bounded(claim(instance_id, lease.token), wait)
        exc = task.exception() if task is not None else None
        if isinstance(exc, FencedOut):
            await book.release(instance_id, lease.value)
            if attempt == ACQUIRE_ATTEMPTS - 1:
                raise exc
            floor = max(floor, exc.seen)
            continue
        if task is None or exc is not None:
            log.warning(
                "instance %s: token %s not claimed in the database yet (%s)",
                instance_id,
                lease.token,
                "slow" if exc is None else type(exc).__name__,
            )
        return lease, None
    raise AssertionError("unreachable")


async def note_refusal(instance_id: int) -> None:
    """Count a refused write (after its transaction rolled back): `refusals` reads it."""
    await FenceMark.filter(instance_id=instance_id).update(refused=F("refused") + 1)


async def refusals(instance_id: int | None = None) -> int:
    """Writes refused for the instance (or for all), since the marks were created."""
    query = FenceMark.all() if instance_id is None else FenceMark.filter(instance_id=instance_id)
    return sum(int(row["refused"]) for row in await query.values("refused"))

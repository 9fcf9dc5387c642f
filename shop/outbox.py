"""Deliveries owed are recorded in the database; Redis only wakes the worker (an outbox).

A paid order is its own delivery intent: `Order.wake_at` is set in the UPDATE that makes it
`paid` (`shop.orders.transition`) or fills it from a restock (`shop.waiting_stock`), and
cleared by the UPDATE that moves it on (delivered, waiting_stock, refunded). The payment and
the delivery it owes therefore commit together, or not at all.

* `wake` is the fast path, right after that commit: one XADD to the instance's stream. When
  Redis refuses it, the writing process tries again in the background for a few seconds.
* `Relay` runs in the reconciler process: every `DELIVERY_RELAY_INTERVAL_MS` one indexed query
  reads the owed deliveries whose `wake_at` is due (a bounded batch), XADDs them in one
  pipeline and pushes each `wake_at` back (by the order's age since payment, between
  `WAKE_GRACE` and `MAX_REWAKE`; `FAILED_REWAKE` after a delivery that found no way to the
  buyer). While Redis is down it retries every 0.2 → 1 s; when Redis answers again (or its
  `run_id` changed: it restarted) every owed delivery is due at once, because a wake Redis
  acknowledged may never have reached its disk, or its answer never reached a worker.
A duplicate wake is harmless: `shop.delivery.prepare` answers DONE for a delivered order, and
the worker serialises deliveries of one order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError
from tortoise.transactions import in_transaction

from fleet import keys
from shop.models import DeliveryPath, Order

log = logging.getLogger(__name__)

DELIVERY_STREAM_MAXLEN = 10_000
WAKE_GRACE = timedelta(seconds=2)  # a delivery takes ~0.1 s: not done by then, wake again
MAX_REWAKE = timedelta(seconds=60)  # an order owed for long (worker down) is woken once a minute
FAILED_REWAKE = timedelta(seconds=60)  # neither DM nor channel worked: do not hammer Discord
STALE_AFTER = timedelta(seconds=10)  # owed and due this long ago: nobody is relaying it
WRITER_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)  # the writer's own retries of a refused wake
RELAY_BACKOFF = (0.2, 1.0)  # while Redis is down: first retry, longest wait
BATCH = 200

_retries: set[asyncio.Task[None]] = set()


async def _xadd(redis: Redis, instance_id: int, order_id: int) -> str:
    # the client decodes responses to str (core.redis.connect: decode_responses=True)
    entry_id = await redis.xadd(
        keys.delivery_stream(instance_id),
        {"order_id": str(order_id)},
        maxlen=DELIVERY_STREAM_MAXLEN,
        approximate=True,
    )
    return cast(str, entry_id)


async def wake(redis: Redis | None, order: Order) -> str | None:
    """XADD the order to its instance's delivery stream (the fast path); None if Redis refused.

    The delivery is owed in the database either way: a refused wake is retried here for a few
    seconds, and the relay wakes whatever is still owed.
    """
    if redis is None or order.instance_id is None:
        log.warning(
            "order %s owed but not woken (redis=%s, instance=%s)",
            order.id,
            redis is not None,
            order.instance_id,
        )
        return None
    try:
        return await _xadd(redis, order.instance_id, order.id)
    except (RedisError, OSError) as exc:
        log.warning(
            "order %s: wake refused (%s); owed in the database, retrying",
            order.id,
            type(exc).__name__,
        )
    with contextlib.suppress(RuntimeError):  # no running loop: the relay alone
        task = asyncio.get_running_loop().create_task(
            _retry_wake(redis, order.instance_id, order.id)
        )
        _retries.add(task)
        task.add_done_callback(_retries.discard)
    return None


async def enqueue_delivery(redis: Redis | None, order: Order) -> str | None:
    """Hand a paid (or restock-filled) order to its worker: `wake` it after the commit that
    made it owed; None if Redis refused now (the delivery stays owed, see `wake`)."""
    return await wake(redis, order)


async def _retry_wake(redis: Redis, instance_id: int, order_id: int) -> None:
    for delay in WRITER_RETRY_DELAYS:
        await asyncio.sleep(delay)
        try:
            await _xadd(redis, instance_id, order_id)
        except (RedisError, OSError):
            continue
        except Exception:  # noqa: BLE001 - e.g. the client was closed: the relay has it
            return
        log.info("order %s woken on retry", order_id)
        return


def next_wake(now: datetime, paid_at: datetime | None, path: str | None) -> datetime:
    """When to wake an owed delivery again after waking it now."""
    if path == DeliveryPath.FAILED:
        return now + FAILED_REWAKE
    age = now - (paid_at or now)
    return now + min(MAX_REWAKE, max(WAKE_GRACE, age))


async def relay_once(redis: Redis, now: datetime | None = None, batch: int = BATCH) -> int:
    """Wake every owed delivery that is due (at most `batch`); how many were woken.

    Raises `RedisError`/`OSError` when Redis refuses: nothing is pushed back then.
    """
    now = now or datetime.now(UTC)
    due = (
        await Order.filter(wake_at__lte=now)
        .order_by("wake_at")
        .limit(batch)
        .values("id", "instance_id", "paid_at", "delivery_path")
    )
    if not due:
        return 0
    pipe = redis.pipeline(transaction=False)
    for row in due:
        if row["instance_id"] is not None:
            pipe.xadd(
                keys.delivery_stream(row["instance_id"]),
                {"order_id": str(row["id"])},
                maxlen=DELIVERY_STREAM_MAXLEN,
                approximate=True,
            )
    await pipe.execute()
    later: dict[datetime, list[int]] = defaultdict(list)
    for row in due:
        at = next_wake(now, row["paid_at"], row["delivery_path"]).replace(microsecond=0)
        later[at + timedelta(seconds=1)].append(row["id"])
    async with in_transaction() as conn:
        for at, ids in later.items():  # only those still owed: a delivered order stays done
            await Order.filter(id__in=ids, wake_at__isnull=False).using_db(conn).update(wake_at=at)
    return len(due)


async def all_due_now(now: datetime | None = None) -> int:
    """Make every owed delivery due now (after Redis came back); how many are owed."""
    now = now or datetime.now(UTC)
    return int(await Order.filter(wake_at__gt=now).update(wake_at=now) or 0)


async def owed_counts(now: datetime | None = None) -> dict[str, int]:
    """Deliveries owed, and those due for over `STALE_AFTER` that no relay has woken."""
    now = now or datetime.now(UTC)
    return {
        "owed": await Order.filter(wake_at__isnull=False).count(),
        "unwoken": await Order.filter(wake_at__lte=now - STALE_AFTER).count(),
    }


class Relay:
    """The loop that turns owed deliveries into wakes (one per reconciler process)."""

    def __init__(self, redis: Redis, interval: float, batch: int = BATCH) -> None:
        self.redis = redis
        self.interval = interval
        self.batch = batch
        self.run_id: str | None = None
        self.down = False
        self.backoff = RELAY_BACKOFF[0]
        self.woken = 0

    async def tick(self) -> float:
        """One pass; the seconds to wait before the next."""
        try:
            info: dict[str, Any] = await self.redis.info("server")
            run_id = str(info.get("run_id", ""))
            if self.down or (self.run_id is not None and run_id != self.run_id):
                owed = await all_due_now()
                log.warning(
                    "Redis is back (%s): %d owed deliveries woken now",
                    "restarted" if run_id != self.run_id else "reachable again",
                    owed,
                )
            self.run_id, self.down, self.backoff = run_id, False, RELAY_BACKOFF[0]
            woken = await relay_once(self.redis, batch=self.batch)
        except (RedisError, OSError) as exc:
            if not self.down:
                log.warning(
                    "Redis unreachable (%s): owed deliveries wait in the database",
                    type(exc).__name__,
                )
            self.down = True
            delay, self.backoff = self.backoff, min(RELAY_BACKOFF[1], self.backoff * 2)
            return delay
        self.woken += woken
        return 0.0 if woken >= self.batch else self.interval

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; a failed pass (the database) is logged and retried."""
        while not stop.is_set():
            try:
                delay = await self.tick()
            except Exception:  # noqa: BLE001 - keep relaying; the next pass retries
                log.exception("delivery relay pass failed")
                delay = self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

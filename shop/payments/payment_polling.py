"""Asking Mercado Pago about open PIX charges, so a lost webhook costs seconds, not minutes.

While a buyer's PIX is open (our payment pending at the provider, its order pending, the code
not expired) the reconciler polls it: first 5 s after it was created, then every 1.5× longer,
at most every 15 s while the charge is under 5 minutes old (when nearly every PIX is paid) and
every 60 s after that (`next_poll`). Every request comes out of one budget per minute shared by
all processes (`PollBudget`, `VITRINE_MP_POLL_BUDGET_PER_MIN`); when the budget is short the
newest charges go first, since those are the ones a buyer is looking at.

The schedule lives in the database (`Payment.next_poll_at`, `poll_attempts`): it survives a
restart of the reconciler, the due payments are one indexed query, and the row that says the
payment is open is the one that says when to ask next, so nothing can drift apart. Only
payments this platform created (a row with a provider id) are ever asked about.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from tortoise.expressions import Q

from fleet import keys
from shop.errors import ShopError
from shop.models import Payment
from shop.payments.service import PaymentServices
from shop.payments.sync import sync_payment
from shop.states import OrderStatus, PaymentStatus

log = logging.getLogger(__name__)
ACTOR = "system:poller"
FIRST_POLL = timedelta(seconds=5)
BACKOFF = 1.5
FRESH_GAP = timedelta(seconds=15)  # the cap while the charge is young…
FRESH_FOR = timedelta(minutes=5)
MAX_GAP = timedelta(seconds=60)  # …and after
# A PIX lives 30 min (+1 min margin, shop.payments.service); past that nothing can pay it and
# the reconciler's slower pass settles what is left.
HORIZON = timedelta(minutes=35)
WINDOW_S = 60.0
OPEN = (PaymentStatus.PENDING, PaymentStatus.IN_PROCESS)


def poll_gap(attempts: int, age: timedelta = timedelta(0)) -> timedelta:
    """The wait after the `attempts`-th poll of a charge `age` old: 5 s × 1.5^(attempts-1),
    at most 15 s in its first 5 minutes and 60 s after."""
    if attempts <= 0:
        return FIRST_POLL
    factor = BACKOFF ** min(attempts - 1, 32)  # bounded: no float overflow for huge counts
    return min(FRESH_GAP if age < FRESH_FOR else MAX_GAP, FIRST_POLL * factor)


def next_poll(
    created_at: datetime, attempts: int, now: datetime, horizon: timedelta = HORIZON
) -> datetime | None:
    """When to ask next about a charge created at `created_at` and polled `attempts` times,
    the last one ending `now`; None when it is too old to poll."""
    if now - created_at >= horizon:
        return None
    if attempts <= 0:
        return created_at + FIRST_POLL
    return now + poll_gap(attempts, now - created_at)


# Sliding log of request times in a sorted set: drop those older than the window, then admit
# only while fewer than the budget remain. Atomic, so processes never overshoot together.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local force = ARGV[5] == '1'
if not force and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""


class PollBudget:
    """At most `per_minute` polling requests to Mercado Pago in any 60 s, across processes
    (a Redis sliding log); with Redis unreachable, a quarter of it in this process alone."""

    def __init__(
        self, redis: Redis | None, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.per_minute = per_minute
        self.local_limit = max(1, per_minute // 4) if per_minute > 0 else 0
        self._local: deque[float] = deque()
        self._clock = clock

    def _now(self) -> float:
        return float(self._clock())

    async def take(self, *, force: bool = False) -> bool:
        """Use one request of the budget; False when it is spent. `force` records one that
        happens anyway (a buyer's button press) so polling leaves room for it."""
        now = self._now()
        if self.redis is not None:
            try:
                return bool(
                    await self.redis.eval(
                        _TAKE,
                        1,
                        keys.MP_POLL_BUDGET,
                        now,
                        WINDOW_S,
                        self.per_minute,
                        f"{now:.6f}:{uuid.uuid4().hex[:8]}",
                        "1" if force else "0",
                    )
                )
            except Exception:  # noqa: BLE001 - Redis down: the conservative local budget
                log.warning("poll budget: Redis unreachable, using the local budget")
        while self._local and self._local[0] <= now - WINDOW_S:
            self._local.popleft()
        if not force and len(self._local) >= self.local_limit:
            return False
        self._local.append(now)
        return True


def _due(now: datetime) -> Q:
    """Open payments of ours whose next poll is due (new ones: 5 s after creation)."""
    # (expires_at is checked in Python: SQLite compares the text, and Mercado Pago's expiry
    # is stored with its own UTC offset)
    return Q(
        status__in=OPEN,
        provider_payment_id__isnull=False,
        order__status=OrderStatus.PENDING,
        created_at__gt=now - HORIZON,
    ) & (
        Q(next_poll_at__lte=now)
        | Q(next_poll_at__isnull=True, poll_attempts=0, created_at__lte=now - FIRST_POLL)
    )


async def poll_once(
    svc: PaymentServices, budget: PollBudget, now: datetime | None = None, batch: int = 200
) -> int:
    """Poll the due payments, newest first, while the budget lasts; returns how many."""
    now = now or datetime.now(UTC)
    due = await Payment.filter(_due(now)).order_by("-created_at").limit(batch)
    polled = 0
    for payment in due:
        if payment.expires_at is not None and payment.expires_at <= now:
            await Payment.filter(id=payment.id).update(next_poll_at=None)  # cannot be paid
            continue
        if not await budget.take():
            break
        polled += 1
        await _poll(svc, payment)
    return polled


async def _poll(svc: PaymentServices, payment: Payment) -> None:
    try:
        result = await sync_payment(svc, str(payment.id), ACTOR, via="poll")
        if result.changed:
            log.info("poll: payment %s: %s", payment.id, "; ".join(result.changes))
    except ShopError as exc:  # provider down or refusing: the schedule simply moves on
        log.warning("poll: payment %s: %s", payment.id, exc)
    attempts = payment.poll_attempts + 1
    now = datetime.now(UTC)
    fresh = await Payment.get(id=payment.id)
    when = next_poll(payment.created_at, attempts, now) if fresh.status in OPEN else None
    await Payment.filter(id=payment.id).update(poll_attempts=attempts, next_poll_at=when)


async def poll_forever(
    svc: PaymentServices, budget: PollBudget, stop: asyncio.Event, every: float = 1.0
) -> None:
    """Poll due payments every `every` seconds until `stop` is set; a failed pass is logged."""
    while not stop.is_set():
        try:
            await poll_once(svc, budget)
        except Exception:  # noqa: BLE001 - keep polling; the next pass retries
            log.exception("payment poll pass failed")
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass

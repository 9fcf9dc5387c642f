"""Waking the workers that owe access work (issue 16): the reconciler's access relay.

Due access work is a column of the grant (`access_grants.next_due_at`, indexed), like an
owed delivery is a column of the order (`shop.outbox`). Workers do not poll the database:
every `ACCESS_RELAY_INTERVAL_S` one indexed query finds the stores with due grants and one
pipelined XADD per store puts `{"access": <tenant id>}` on each of the store's instances'
delivery stream (the consumer that already reads it hands it to the access runner). The
worker then claims the store's due grants itself (`shop.access_run.run_due`).

The relay does not touch the grants: a claim pushes `next_due_at` ahead, so a grant being
worked on stops being woken, and a dead worker's grants become due again when their hold
runs out. A grant still due is woken again at most every `REWAKE_S` (a worker that is down
is not flooded); a grant whose `next_due_at` changed (a revocation) counts as new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from fleet import keys
from fleet.models import BotInstance
from shop.models import AccessGrant
from shop.outbox import DELIVERY_STREAM_MAXLEN

log = logging.getLogger(__name__)
ACCESS_RELAY_INTERVAL_S = 2.0
REWAKE_S = 30.0
BATCH = 500
ACCESS_FIELD = "access"  # the stream entry's field; its value is the tenant id


class AccessRelay:
    """The loop that turns due grants into wakes (one per reconciler process)."""

    def __init__(self, redis: Redis, interval: float = ACCESS_RELAY_INTERVAL_S) -> None:
        self.redis = redis
        self.interval = interval
        self.woken: dict[tuple[int, datetime], float] = {}  # (grant, due) -> monotonic time
        self.wakes = 0

    async def tick(self, now: datetime | None = None) -> int:
        """One pass; how many stores were woken."""
        now = now or datetime.now(UTC)
        due = (
            await AccessGrant.filter(next_due_at__lte=now)
            .order_by("next_due_at")
            .limit(BATCH)
            .values_list("id", "tenant_id", "next_due_at")
        )
        clock = time.monotonic()
        self.woken = {k: at for k, at in self.woken.items() if clock - at < REWAKE_S}
        fresh = [(gid, tid, at) for gid, tid, at in due if (gid, at) not in self.woken]
        tenants = sorted({tid for _, tid, _ in fresh})
        if not tenants:
            return 0
        instances = await BotInstance.filter(tenant_id__in=tenants).values_list("id", "tenant_id")
        pipe = self.redis.pipeline(transaction=False)
        for instance_id, tenant_id in instances:
            pipe.xadd(
                keys.delivery_stream(instance_id),
                {ACCESS_FIELD: str(tenant_id)},
                maxlen=DELIVERY_STREAM_MAXLEN,
                approximate=True,
            )
        await pipe.execute()
        for gid, _, at in fresh:
            self.woken[(gid, at)] = clock
        self.wakes += len(instances)
        return len(instances)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; a failed pass (Redis, the database) is logged and the
        next one retries (what is due stays due in the database)."""
        while not stop.is_set():
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                log.warning("access relay: Redis unreachable (%s)", type(exc).__name__)
            except Exception:  # noqa: BLE001 - keep relaying
                log.exception("access relay pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

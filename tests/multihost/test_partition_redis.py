"""Redis restarts empty (no AOF) in the middle of a purchase stream on two hosts: no bot has
two gateway sessions for longer than one lease TTL, the database never accepts a fencing
token smaller than one it already saw, and every paid order is delivered exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from fleet import fencing, keys
from tests.multihost.world import TTL, check_invariants, lease_token, retry

pytestmark = [pytest.mark.multihost, pytest.mark.e2e, pytest.mark.timeout(240)]


class Overlaps:
    """Samples every bot's open gateway sessions (the sandbox's count) and keeps the
    longest stretch during which one bot had two or more."""

    def __init__(self, w) -> None:
        self.w, self.longest, self.stop = w, 0.0, asyncio.Event()
        self.since: dict[str, float] = {}

    async def run(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            for bot, *_ in self.w.stores:
                opened = (await self.w.dc.bot_info(bot))["open_connections"]
                if opened >= 2:
                    start = self.since.setdefault(bot.application_id, now)
                    self.longest = max(self.longest, now - start)
                else:
                    self.since.pop(bot.application_id, None)
            await asyncio.sleep(0.2)


class Marks:
    """Samples the database's fencing marks (`fleet.fencing.high_water`): a mark that ever
    went down would mean the database accepted a smaller token after a larger one."""

    def __init__(self, ids) -> None:
        self.ids, self.seen, self.decreases, self.stop = ids, {}, [], asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            for iid in self.ids:
                token, last = await fencing.high_water(iid), self.seen.get(iid, 0)
                if token < last:
                    self.decreases.append((iid, last, token))
                self.seen[iid] = max(last, token)
            await asyncio.sleep(0.2)


async def test_redis_restarting_empty_never_leaves_two_sessions_nor_lowers_a_token(world):
    w = world
    overlaps, marks = Overlaps(w), Marks(w.ids)
    watchers = [asyncio.create_task(overlaps.run()), asyncio.create_task(marks.run())]
    try:
        load = w.load()
        await asyncio.sleep(3.0)
        w.redis.kill()  # SIGKILL, no AOF: it comes back empty
        await asyncio.sleep(1.0)
        w.redis.start()
        await load
        await check_invariants(w)
        await asyncio.sleep(TTL)  # a late duplicate would show up in the sampler by now
    finally:
        overlaps.stop.set()
        marks.stop.set()
        for task in watchers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
    assert overlaps.longest <= TTL + 0.5, f"two sessions for {overlaps.longest:.1f}s"
    assert not marks.decreases, f"fencing marks went down: {marks.decreases}"
    for iid in w.ids:  # the tokens granted after the restart went on above the marks
        held = lease_token(await retry(lambda i=iid: w.a.redis.get(keys.lease(i))))
        assert held >= marks.seen[iid] > 0, (iid, held, marks.seen[iid])
    infos = [await w.dc.bot_info(s[0]) for s in w.stores]
    print(
        f"longest overlap {overlaps.longest:.1f}s; IDENTIFYs {[i['identify_count'] for i in infos]}"
    )

"""The worker's side of fencing: the token its writes carry, the stop when one is refused, and
the worker's own clock on its lease.

The worker was started with the lease `"node:token"` its orchestrator node acquired; every
write its bot makes as the instance's owner passes `guard.fence` to the `shop`/`fleet`
service, which checks it in the write's transaction (`fleet.fencing`). A refused write
(`FencedOut`: another node was granted the bot since) is handed to `refuse`, which logs one
line and stops the process with `ExitCode.LEASE_LOST` (`worker.lifecycle`). The refused work
stays where it was for the real owner: its transaction rolled back, the stream entry is not
acknowledged.

`LeaseClock` bounds what a worker cut off from Redis (but not from Discord) can do: it
stops itself once it has gone a whole lease TTL without a successful renewal, because
from then on another node may hold the lease. A paused worker's clock runs on while it is
stopped, so it stops at the first turn of its event loop after waking.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fleet.errors import FencedOut
from fleet.fencing import Fence

log = logging.getLogger("worker")


class FenceGuard:
    """The fence of this process (None: started without a lease, nothing is checked)."""

    def __init__(self, fence: Fence | None = None) -> None:
        self.fence = fence
        self.refused: FencedOut | None = None
        self._stop: Callable[[], None] | None = None

    def on_refused(self, stop: Callable[[], None]) -> None:
        """What to call when a write is refused (the lifecycle's stop)."""
        self._stop = stop
        if self.refused is not None:
            stop()

    def refuse(self, exc: FencedOut) -> None:
        """A write was refused: log it once and stop the worker."""
        if self.refused is None:
            self.refused = exc
            log.warning("write refused by the database (%s): stopping, fenced off", exc)
        if self._stop is not None:
            self._stop()


class LeaseClock:
    """The worker's own view of its lease: stops the worker `ttl - step` after the last renewal
    that Redis confirmed, counted from when that renewal was sent (so before Redis can let the
    lease lapse).

    Its timer is moved on by each renewal and fires only when renewals stop: an idle worker
    never wakes for it (issue 14: it woke every second, then once per renewal window, ~1 s
    before the beat that renewed anyway). A worker woken from a pause (SIGSTOP, a frozen VM)
    finds every timer due at once and the clock's is not always first: whoever looks first
    stops it (`expire_if_overdue`, which the heartbeat calls before anything else), so nothing
    can push a lapsed clock on."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.step = min(1.0, ttl / 10)  # the margin before Redis lets the lease lapse
        self.renewed_at = time.monotonic()
        self.expired = False
        self._due: asyncio.Future[None] | None = None  # what `watch` waits on
        self._timer: asyncio.TimerHandle | None = None

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at `sent_at` (time.monotonic()) was confirmed."""
        self.renewed_at = max(self.renewed_at, sent_at)
        self._arm()

    def left(self) -> float:
        """Seconds until the clock stops the worker (<= 0: the lease may be another's)."""
        return self.renewed_at + self.ttl - self.step - time.monotonic()

    def expire_if_overdue(self, stop: Callable[[], None]) -> bool:
        """Call `stop` (once) if the lease may have lapsed; True if it has."""
        if self.expired:
            return True
        if self.left() > 0:
            return False
        self.expired = True
        silent = time.monotonic() - self.renewed_at
        log.warning("lease not renewed for %.1f s: another node may hold it; stopping", silent)
        stop()
        return True

    def _arm(self) -> None:
        """(Re)set the timer to the deadline (the loop's clock is time.monotonic())."""
        if self._due is None or self._due.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._due.get_loop().call_later(max(0.0, self.left()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._due is not None and not self._due.done():
            self._due.set_result(None)

    async def watch(self, stop: Callable[[], None], closing: Callable[[], bool]) -> None:
        """Call `stop` once the lease may have lapsed; ends when `closing()`."""
        while not closing():
            if self.expire_if_overdue(stop):
                return
            self._due = asyncio.get_running_loop().create_future()
            self._arm()
            try:
                await self._due
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self._due = None

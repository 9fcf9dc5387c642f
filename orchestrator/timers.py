"""One pending timer per instance (a backoff, a crash-loop wait, a placement grace): when it
fires, `fire(iid)` runs; scheduling again replaces the previous timer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class InstanceTimers:
    def __init__(self, fire: Callable[[int], None]) -> None:
        self._handles: dict[int, asyncio.TimerHandle] = {}
        self._fire = fire

    def schedule(self, iid: int, at: float) -> None:
        """Call `fire(iid)` at `at` (epoch seconds), replacing the instance's timer."""
        self.cancel(iid)
        delay = max(0.0, at - time.time())
        self._handles[iid] = asyncio.get_running_loop().call_later(delay, self._fire, iid)

    def fired(self, iid: int) -> None:
        """Forget the instance's timer (the one that fired)."""
        self._handles.pop(iid, None)

    def cancel(self, iid: int) -> None:
        handle = self._handles.pop(iid, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for iid in list(self._handles):
            self.cancel(iid)

    def __contains__(self, iid: object) -> bool:
        return iid in self._handles

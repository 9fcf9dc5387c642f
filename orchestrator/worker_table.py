"""The workers a node watches: one `Worker` per instance, found by instance id or by pid.

Workers are not the orchestrator's children, so each is watched through a pidfd
(`orchestrator.zygote_client.PidWatch`); the table calls its `on_exit` once when a watched
process ends.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fleet.runtime import RuntimeRecord
from orchestrator.zygote_client import PidWatch, is_same_process, send_signal


class InstanceLock(asyncio.Lock):
    """The per-instance lock; `epoch` counts the locked sections that ended, so a caller that
    read the instance's record before taking the lock knows whether it may be stale."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def release(self) -> None:
        self.epoch += 1
        super().release()


@dataclass(eq=False)
class Worker:
    instance_id: int
    pid: int
    start: int | None  # /proc start time: tells our process from a reused pid
    spawned_at: float
    config_version: int | None = None
    watch: PidWatch | None = None
    stopping: str | None = None  # why we asked it to stop ("stop", "restart", "stuck", ...)
    kill_timer: asyncio.TimerHandle | None = None
    code: int | None = None  # exit status; < 0: killed by that signal
    lease: str | None = None  # the lease value it runs under
    handled: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    def signal_stop(self, why: str, grace: float) -> None:
        """SIGTERM now (SIGUSR2 for a handover), SIGKILL after `grace` s; `why` is kept (the
        first reason wins)."""
        self.stopping = self.stopping or why
        if self.exited.is_set():
            return
        if why == "stuck":  # its stacks go to <id>.stderr.log: why was it stuck?
            send_signal(self.pid, signal.SIGUSR1, self.start)
        # a drain (node stopping or handing over) or a lease another node took: the bot runs
        # elsewhere next, so the worker stops leaving its gateway session resumable (SIGUSR2,
        # worker.resume); every other stop ends the session (SIGTERM: closes with 1000)
        handover = why in ("drain", "lease")
        send_signal(self.pid, signal.SIGUSR2 if handover else signal.SIGTERM, self.start)
        if self.kill_timer is None:
            self.kill_timer = asyncio.get_running_loop().call_later(
                grace, send_signal, self.pid, signal.SIGKILL, self.start
            )

    def let_go(self) -> None:
        """Stop watching the process and cancel its pending SIGKILL (it may keep running)."""
        if self.watch is not None:
            self.watch.close()
        if self.kill_timer is not None:
            self.kill_timer.cancel()


class WorkerTable:
    """Workers by instance id (a read-only mapping: `get`, `in`, `[]`, iteration over ids)
    and by pid."""

    def __init__(self, on_exit: Callable[[Worker], None]) -> None:
        self._by_id: dict[int, Worker] = {}
        self._by_pid: dict[int, Worker] = {}
        self._on_exit = on_exit

    def add(self, worker: Worker, watch: bool = True) -> None:
        """Enter the worker; watch its process unless `watch` is False (it already ended)."""
        self._by_id[worker.instance_id] = worker
        self._by_pid[worker.pid] = worker
        if not watch:
            return
        try:
            worker.watch = PidWatch(worker.pid, self._ended)
        except ProcessLookupError:  # already gone
            self._ended(worker.pid)

    def adopt(self, rec: RuntimeRecord, spawned_at: float | None) -> Worker | None:
        """Enter and watch a live worker a previous orchestrator left; None when it is gone."""
        if rec.pid is None or not is_same_process(rec.pid, rec.pid_start):
            return None
        worker = Worker(
            rec.instance_id,
            rec.pid,
            rec.pid_start,
            spawned_at or rec.since or time.time(),
            rec.config_version,
            lease=rec.lease,
        )
        self.add(worker)
        return worker

    def _ended(self, pid: int) -> None:
        worker = self._by_pid.get(pid)
        if worker is not None:
            self._on_exit(worker)

    def forget(self, worker: Worker) -> None:
        """Take the worker out (its process ended or is let go of)."""
        if self._by_id.get(worker.instance_id) is worker:
            del self._by_id[worker.instance_id]
        self._by_pid.pop(worker.pid, None)
        worker.let_go()

    def get(self, iid: int) -> Worker | None:
        return self._by_id.get(iid)

    def values(self) -> list[Worker]:
        return list(self._by_id.values())

    def __getitem__(self, iid: int) -> Worker:
        return self._by_id[iid]

    def __contains__(self, iid: object) -> bool:
        return iid in self._by_id

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._by_id))

    def __len__(self) -> int:
        return len(self._by_id)

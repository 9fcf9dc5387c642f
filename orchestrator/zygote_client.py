"""Processes: the zygote client (spawn a worker in milliseconds), pidfd watches, signals.

Workers are not the orchestrator's children (the zygote forks them, and after an orchestrator
restart they belong to nobody we know), so they are watched with `os.pidfd_open` and
identified by pid + start time (a reused pid has another start time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from fleet import zygote_protocol as zp

log = logging.getLogger("orchestrator.zygote_client")


def proc_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    rest = raw[raw.rindex(b")") + 2 :].split()
    return int(rest[19])


def is_same_process(pid: int, start: int | None) -> bool:
    return start is not None and proc_start_time(pid) == start


def send_signal(pid: int, sig: int, start: int | None) -> bool:
    """Signal `pid` only when it is still the process we started (never a reused pid)."""
    if not is_same_process(pid, start):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


class PidWatch:
    """Calls `on_exit(pid)` once when the process ends (pidfd readable)."""

    def __init__(self, pid: int, on_exit: Callable[[int], None]) -> None:
        self.pid = pid
        self.fd: int | None = os.pidfd_open(pid)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._fire)
        self._on_exit = on_exit

    def _fire(self) -> None:
        self.close()
        self._on_exit(self.pid)

    def close(self) -> None:
        if self.fd is not None:
            self._loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None


class ZygoteError(RuntimeError):
    pass


class Spawner:
    """Client of `python -m worker.zygote`; restarts the zygote if it dies."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._seq = 0
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}  # pid -> exit code from the zygote
        self._ready: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.zygote",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
            limit=1 << 20,
        )
        self._reader = asyncio.create_task(self._read(self.proc))
        await asyncio.wait_for(asyncio.shield(self._ready), 60)
        log.info("zygote %s ready", self.proc.pid)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                msg = zp.decode(raw)
            except ValueError:
                continue
            op = msg.get(zp.OP)
            if op == zp.READY and self._ready and not self._ready.done():
                self._ready.set_result(None)
            elif op == zp.SPAWNED:
                seq, pid = zp.spawned_args(msg)
                fut = self._pending.pop(seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(pid)
            elif op == zp.EXITED:
                pid, code = zp.exited_args(msg)
                fut = self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
                if not fut.done():
                    fut.set_result(code)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ZygoteError("zygote exited"))
        self._pending.clear()
        if self._ready and not self._ready.done():
            self._ready.set_exception(ZygoteError("zygote exited before it was ready"))

    async def ensure_started(self) -> None:
        """Start the zygote unless it runs (again, if it died)."""
        async with self._lock:
            if self.proc is None or self.proc.returncode is not None:
                if self.proc is not None:
                    log.warning("zygote ended (%s); starting a new one", self.proc.returncode)
                await self.start()

    async def spawn(
        self, instance_id: int, lease: str | None = None, start: dict[str, Any] | None = None
    ) -> int:
        """Fork a worker for `instance_id` holding `lease` (fleet.leases), handing it its
        `start` row (fleet.start_data; None: it reads the database); returns its pid."""
        await self.ensure_started()
        assert self.proc is not None and self.proc.stdin is not None
        self._seq += 1
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = fut
        self.proc.stdin.write(zp.spawn(self._seq, instance_id, lease, start))
        await self.proc.stdin.drain()
        # No timeout here: the zygote answers every request or dies (then the reader fails
        # the future). Giving up early would leave a forked worker nobody watches.
        pid = await fut
        self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
        return pid

    def is_child(self, pid: int) -> bool:
        return pid in self._exits

    async def exit_code(self, pid: int, wait: float = 0.5) -> int | None:  # noqa: ASYNC109
        """The exit status the zygote reaped (None if it is not ours or did not say in time)."""
        fut = self._exits.get(pid)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait)
        except TimeoutError:
            return None
        finally:
            if fut.done():
                self._exits.pop(pid, None)

    async def close(self) -> None:
        """Stop the zygote (its children keep running: they are in their own sessions)."""
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

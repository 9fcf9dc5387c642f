"""Small process and port helpers shared by the demo, the benches and the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def pids_with_env(name: str, value: str) -> list[int]:
    """Pids (other than this one) whose environment has NAME=value: finds every process a run
    started (and their children) through /proc, even when nothing else kept track of them."""
    marker = f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_all_with_env(name: str, value: str, tries: int = 20) -> None:
    """SIGKILL every process `pids_with_env` finds, looking again until none is left: a
    zygote killed while it forks leaves a child the first look did not see."""
    for _ in range(tries):
        left = pids_with_env(name, value)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def redis_argv(port: int, *extra: str, workdir: Path | None = None, aof: bool = False) -> list[str]:
    """The redis-server command line of the benches and harnesses: loopback, no RDB snapshots."""
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
    ]
    if workdir is not None:
        argv += ["--dir", str(workdir)]
    return argv + list(extra)


class RedisServer:
    """A private redis-server on a fixed port and directory: start, SIGKILL, start again
    (without AOF it comes back empty, as after a crash of a cache-only Redis)."""

    def __init__(self, workdir: Path, *, aof: bool = False) -> None:
        self.port, self.dir, self.aof = free_port(), workdir, aof
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            redis_argv(self.port, workdir=self.dir, aof=self.aof), stdout=subprocess.DEVNULL
        )
        wait_port(self.port, timeout=10)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

"""`vitrine demo` as a subprocess on free ports in a scratch directory (shared by the demo test
and the runbook scenario test)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.demo import (
    DEMO_BOT_TOKEN,
    DEMO_CLIENT_SECRET,
    DEMO_MP_ACCESS_TOKEN,
    DEMO_WEBHOOK_SECRET,
    STATE_FILE,
    demo_processes,
)
from ops.process_tools import free_port

BIN = Path(sys.executable).parent
VITRINE = str(BIN / "vitrine")


@dataclass
class Demo:
    dir: Path
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "data" / STATE_FILE).read_text())

    @property
    def conf(self) -> Path:
        return self.dir / "supervisord.conf"

    def vitrine(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A `vitrine` command run from the demo directory (its .env points at the demo)."""
        return subprocess.run(
            [VITRINE, *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def secrets(self) -> dict[str, str]:
        text = (self.dir / "data" / "secrets.env").read_text()
        return dict(
            line.split("=", 1)
            for line in text.splitlines()
            if "=" in line and not line.startswith("#")
        )

    def every_secret(self) -> dict[str, str]:
        found = {
            "bot token": DEMO_BOT_TOKEN,
            "MP access token": DEMO_MP_ACCESS_TOKEN,
            "webhook secret": DEMO_WEBHOOK_SECRET,
            "OAuth secret": DEMO_CLIENT_SECRET,
        }
        generated = self.secrets()
        found["session secret"] = generated["PORTAL_SESSION_SECRET"]
        for n, token in enumerate(generated["ADMIN_API_TOKEN"].split(",")):
            found[f"admin token {n}"] = token
        for n, key in enumerate(generated["TOKEN_ENCRYPTION_KEYS"].split(",")):
            found[f"encryption key {n}"] = key
        return found

    def wait_line(self, text: str, timeout: float = 50) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None:
                time.sleep(0.5)
                if text in self.output:
                    return
                raise AssertionError(f"demo exited ({self.proc.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in {timeout}s:\n{self.output}")
            time.sleep(0.1)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def running_demo(tmp_path: Path, redis_url: str) -> Iterator[Demo]:
    """Start the demo, wait for `demo ready`; on exit stop it (SIGINT, as Ctrl-C) and kill
    anything it left (the tests assert there is nothing to kill)."""
    directory = (tmp_path / "demo").resolve()
    args = [
        "--dir",
        str(directory),
        "--discord-port",
        str(free_port()),
        "--mp-port",
        str(free_port()),
        "--portal-port",
        str(free_port()),
        "--admin-port",
        str(free_port()),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "LOG_DIR")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        [VITRINE, "demo", *args, "--redis-url", redis_url, "--stock", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    demo = Demo(directory, args, env, proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            demo.lines.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield demo
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for pid in demo_processes(directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reader.join(5)
        if proc.stdout:
            proc.stdout.close()

"""Talking to the running supervisord (the one `vitrine run` started) through supervisorctl."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SERVICES = ("portal", "admin", "orchestrator")


def _ctl_binary() -> str:
    local = Path(sys.executable).parent / "supervisorctl"
    return str(local) if local.exists() else (shutil.which("supervisorctl") or "supervisorctl")


def ctl(conf: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_ctl_binary(), "-c", str(conf), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def is_running(conf: Path) -> bool:
    """True when a supervisord answers on the socket configured in `conf`."""
    result = ctl(conf, "pid", timeout=10)
    return result.returncode == 0 and result.stdout.strip().isdigit()


def states(conf: Path) -> dict[str, str]:
    """Program name -> supervisord state (RUNNING, STOPPED, EXITED...)."""
    out = ctl(conf, "status").stdout
    return {
        parts[0]: parts[1]
        for parts in (line.split() for line in out.splitlines())
        if len(parts) >= 2
    }

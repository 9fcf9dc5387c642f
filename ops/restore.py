"""`vitrine restore`: stop, restore, migrate, verify, start, health-check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from core.settings import Settings
from ops import supervisor
from ops.backup import BackupError, read_manifest, restore_files, table_counts
from ops.migrations import apply


class RestoreError(BackupError):
    pass


def _wait_healthy(settings: Settings, timeout: float = 60) -> bool:
    url = f"http://127.0.0.1:{settings.portal_port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def restore(settings: Settings, archive: Path, conf: Path,
            progress: Callable[[str], None] = print) -> int:
    """Return 0 when the platform is restored (and healthy, if it was running)."""
    manifest = read_manifest(archive)
    progress(f"backup of {manifest['created_at']} ({manifest['database']}): "
             f"{manifest['counts']['orders']} orders")
    running = supervisor.is_running(conf)
    if running:
        progress("stopping " + ", ".join(supervisor.SERVICES))
        supervisor.ctl(conf, "stop", *supervisor.SERVICES)
    restore_files(settings, archive, progress)
    applied = asyncio.run(apply(settings.database_url))
    progress(f"migrations: {len(applied)} applied" if applied else "migrations: up to date")
    counts = asyncio.run(table_counts(settings.database_url))
    missing = {t: (n, counts.get(t)) for t, n in manifest["counts"].items() if counts.get(t) != n}
    if missing:
        raise RestoreError(f"restored database differs from the backup: {missing}")
    progress("verified: " + ", ".join(f"{n} {t}" for t, n in counts.items() if n))
    if not running:
        progress("services were not running: start them with `vitrine run` (or make run)")
        return 0
    progress("starting " + ", ".join(supervisor.SERVICES))
    supervisor.ctl(conf, "start", *supervisor.SERVICES)
    if not _wait_healthy(settings):
        raise RestoreError("restored, but the portal health check did not pass within 60 s: "
                           "see logs/portal.out.log")
    progress("health check passed: restore complete")
    return 0

"""Kernel same-page merging (KSM) for the workers (issue 14, `VITRINE_KSM`).

Python 3.11 writes a reference count into every object a worker's code touches, so a worker
copies many of the zygote's pages only to write them back to the same bytes (the count went
up and down). Those copies are byte-identical in every worker, and KSM can merge them back
into one shared, write-protected page. A worker opts its own memory in with
`prctl(PR_SET_MEMORY_MERGE, 1)` (Linux >= 6.4; every VMA of the process that KSM can handle,
and the setting is inherited across fork: https://docs.kernel.org/admin-guide/mm/ksm.html,
"Controlling KSM with prctl"). Whether the kernel's `ksmd` runs at all, and how fast it scans,
is the host's setting (`/sys/kernel/mm/ksm/run`, `pages_to_scan`, `sleep_millisecs`,
`advisor_mode`; docs/configuration.md): the orchestrator only says, once, when KSM is asked
for and cannot work.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from pathlib import Path

from core.tuning import TuningError

# include/uapi/linux/prctl.h (Linux 6.4)
PR_SET_MEMORY_MERGE = 67
PR_GET_MEMORY_MERGE = 68

KSM_SYSFS = Path("/sys/kernel/mm/ksm")
MODES = ("off", "on")
DEFAULT_MODE = "on"


def requested(environ: Mapping[str, str] | None = None) -> bool:
    """VITRINE_KSM: `on` (default) lets every worker opt its memory in to KSM, `off` not."""
    raw = (os.environ if environ is None else environ).get("VITRINE_KSM", "").strip().lower()
    if not raw:
        raw = DEFAULT_MODE
    if raw not in MODES:
        raise TuningError("VITRINE_KSM", f"{raw[:20]!r} is not one of {', '.join(MODES)}", "on")
    return raw == "on"


def _prctl(option: int, arg: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    result = int(libc.prctl(option, arg, 0, 0, 0))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def opt_in() -> None:
    """Make this process's memory mergeable (its children inherit it). `OSError` when the
    kernel cannot (EINVAL before Linux 6.4 or without CONFIG_KSM; EPERM in some sandboxes)."""
    _prctl(PR_SET_MEMORY_MERGE, 1)


def merging() -> bool:
    """Whether this process's memory is mergeable; `OSError` when the kernel has no such
    prctl."""
    return _prctl(PR_GET_MEMORY_MERGE, 0) == 1


def startup_warning(
    environ: Mapping[str, str] | None = None, sysfs: Path = KSM_SYSFS
) -> str | None:
    """The one line the orchestrator logs at start when KSM is asked for and cannot work."""
    if not requested(environ):
        return None
    why = host_problem(sysfs)
    return f"VITRINE_KSM=on but workers' pages will not be merged: {why}" if why else None


def host_problem(sysfs: Path = KSM_SYSFS) -> str | None:
    """Why KSM will not merge anything on this host, or None when it can: the kernel has no
    KSM, has no per-process prctl, or the host has not started `ksmd` (`run` is not 1)."""
    try:
        run = (sysfs / "run").read_text().strip()
    except OSError:
        return f"{sysfs} is missing: this kernel has no KSM (CONFIG_KSM)"
    try:
        merging()
    except OSError as exc:
        return f"prctl(PR_GET_MEMORY_MERGE) failed ({exc.strerror}): Linux 6.4 or later is needed"
    if run != "1":
        return f"{sysfs / 'run'} is {run}: the host has not started ksmd (echo 1 > it)"
    return None

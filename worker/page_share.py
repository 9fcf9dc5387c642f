"""Give a worker's needless copies of zygote pages back (issue 14, `VITRINE_PAGE_SHARE`).

Python 3.11 writes a reference count into every object a worker's code touches, so each forked
worker copies ~3,200 of the zygote's pages (12.5 MB), and ~1,200 of them (4.7 MB) end up
holding exactly the zygote's bytes again: the counts went up and came back down. Linux keeps
such a copy forever, and KSM only finds it by scanning every page of every worker.

So the zygote, once warmed up and frozen, moves its anonymous memory into a memfd mapped
privately at the same addresses (`share()`, worker/_pageshare.c): the same bytes, now backed by
a file. A worker then (`give_back()`, after it is online and again when idle) finds the pages it
copied whose bytes equal the file's and drops its copy with MADV_DONTNEED; for a private file
mapping that puts the shared file page back (madvise(2)). The next write copies the page again,
as before: nothing changes for the Python code, only where identical bytes live.

Which memory is shared: the zygote's anonymous, private, read-write mappings (pymalloc arenas,
the interpreter's frame stacks, big allocations, glibc's main heap) — never thread stacks or
glibc's thread arenas, which other threads write without the GIL while a worker compares a
page. What a worker's other threads do (disnake's heartbeat thread runs Python, with the GIL;
aiosqlite's and the resolver's threads allocate from their own glibc arenas) is why the main
heap may be shared: no thread writes it without holding the GIL.
Both calls run in C with the GIL held, so no Python code runs between a comparison and the
drop. Without the compiled helper (no C compiler at install) or with `VITRINE_PAGE_SHARE=off`,
nothing happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from core.tuning import TuningError

log = logging.getLogger("worker")

MODES = ("off", "on")
DEFAULT_MODE = "on"

# a worker gives its copies back these many seconds after it is first online (the READY
# handshake; then the rest of the start-up: command sync, first heartbeats, the store's
# guild), then at the first heartbeat every IDLE_EVERY seconds
AFTER_READY = (2.0, 30.0)
IDLE_EVERY = 300.0


def _helper() -> ModuleType | None:
    try:
        from worker import _pageshare  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _pageshare


def requested(environ: Mapping[str, str] | None = None) -> bool:
    """VITRINE_PAGE_SHARE: `on` (default) or `off`."""
    raw = (os.environ if environ is None else environ).get("VITRINE_PAGE_SHARE", "")
    raw = raw.strip().lower() or DEFAULT_MODE
    if raw not in MODES:
        raise TuningError(
            "VITRINE_PAGE_SHARE", f"{raw[:20]!r} is not one of {', '.join(MODES)}", "on"
        )
    return raw == "on"


def available() -> bool:
    return _helper() is not None


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    perms: str
    name: str


def regions(maps: str) -> list[Region]:
    out = []
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        out.append(Region(start, end, parts[1], parts[5].strip() if len(parts) > 5 else ""))
    return out


def heap_is_main_threads(environ: Mapping[str, str]) -> bool:
    """False when glibc is told to cap its arenas (MALLOC_ARENA_MAX, or arena_max in
    GLIBC_TUNABLES): other threads may then allocate from the main heap without the GIL."""
    return "MALLOC_ARENA_MAX" not in environ and "arena_max" not in environ.get(
        "GLIBC_TUNABLES", ""
    )


def shareable(maps: str, heap: bool = True) -> list[tuple[int, int]]:
    """(start, length) of the anonymous private read-write mappings no other thread writes
    without the GIL: unnamed ones and the `[heap]` (glibc's main arena, which only the main
    thread allocates from), not `[stack]` or files, and not next to an inaccessible mapping
    (a thread stack's guard page below it, or the reserved rest of a glibc thread arena's
    64 MB above it: those are other threads' own memory)."""
    found = regions(maps)
    out = []
    for i, region in enumerate(found):
        if region.name not in ("", "[heap]" if heap else "") or region.perms != "rw-p":
            continue
        before = found[i - 1] if i > 0 else None
        after = found[i + 1] if i + 1 < len(found) else None
        if before is not None and before.end == region.start and before.perms == "---p":
            continue
        if after is not None and after.start == region.end and after.perms == "---p":
            continue
        out.append((region.start, region.end - region.start))
    return out


# the memfd backing the zygote's memory (inherited by every worker), -1 until share(), and
# the address and length of a read-only view of it
_FD = -1
_VIEW = (0, 0)


def share() -> str:
    """In the zygote, after the warm-up and gc.freeze(), before the first fork. Returns what it
    did, for the zygote's log line."""
    global _FD, _VIEW
    helper = _helper()
    if helper is None:
        return "page sharing off: worker/_pageshare.c was not compiled (no C compiler at install)"
    if _FD >= 0:
        return "page sharing: already on"
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        return "page sharing off: the zygote runs more than one thread"
    ranges = shareable(Path("/proc/self/maps").read_text(), heap_is_main_threads(os.environ))
    try:
        fd, view, length = helper.share(ranges)
    except OSError as exc:  # no memfd, or no memory to copy into it: nothing was changed
        return f"page sharing off: {exc}"
    _FD, _VIEW = fd, (view, length)
    total = sum(length for _, length in ranges)
    return f"page sharing: {total / 2**20:.1f} MB in {len(ranges)} mappings backed by a memfd"


def give_back() -> tuple[int, int]:
    """In a worker: drop every copied zygote page that holds the zygote's bytes again.
    Returns (copied pages seen, pages given back); (0, 0) when sharing is off."""
    helper = _helper()
    if helper is None or _FD < 0:
        return 0, 0
    copied, dropped = helper.revert(*_VIEW)
    return int(copied), int(dropped)


def enabled_in_this_process() -> bool:
    return _FD >= 0


class Schedule:
    """When a worker gives its copies back: AFTER_READY seconds after it is first online, and
    at the first heartbeat IDLE_EVERY seconds after the last time (what handling events copied
    since)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.pages_given_back = 0

    def run(self) -> None:
        self.last = started = time.monotonic()
        try:
            copied, dropped = give_back()
        except OSError as exc:  # /proc unreadable (a hardened host): keep the copies
            log.warning("page sharing: could not give pages back: %s", exc)
            return
        self.pages_given_back += dropped
        log.debug(
            "page sharing: %d of %d copied pages given back in %.1f ms",
            dropped,
            copied,
            (time.monotonic() - started) * 1e3,
        )

    def after_ready(self) -> None:
        if enabled_in_this_process():
            loop = asyncio.get_running_loop()
            for delay in AFTER_READY:
                loop.call_later(delay, self.run)

    def on_beat(self) -> None:
        if (
            enabled_in_this_process()
            and self.last is not None
            and time.monotonic() - self.last >= IDLE_EVERY
        ):
            self.run()

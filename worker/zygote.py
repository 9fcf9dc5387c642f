"""The zygote: a template process that imported disnake and the project once, then forks one
worker per request (`python -m worker.zygote`, started by the orchestrator).

Protocol: JSON lines, spawn requests on stdin, `ready`, `spawned` and `exited` on stdout
(`fleet.zygote_protocol`). EOF on stdin (the orchestrator is gone) ends the zygote; its
children are in their own sessions and keep running.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import selectors
import signal
import sys
from typing import TYPE_CHECKING

from core import pg_pool
from core.logging import JsonFormatter
from core.tuning import TuningError, tuning_int, tuning_path
from fleet import ksm
from fleet import zygote_protocol as zp
from worker import hot_code, page_share
from worker.malloc_holes import fill_malloc_holes

if TYPE_CHECKING:
    from core.settings import Settings

PRELOAD = [
    "asyncio",
    "logging.handlers",
    "json",
    "aiohttp",
    "disnake",
    "disnake.ext.commands",
    "redis.asyncio",
    "tortoise",
    "tortoise.backends.sqlite",
    "core.sqlite_backend",
    "cryptography.fernet",
    "core.settings",
    "core.db",
    "core.vault",
    "core.logging",
    "core.i18n",
    "core.redis",
    "fleet.runtime",
    "fleet.models",
    "shop.models",
    "core.models",
    "aerich.models",
    "worker.bot",
    "worker.lifecycle",
    "worker.main",
]


def preload() -> None:
    """Import everything a worker needs, warm caches, and freeze the heap for the children."""
    from core.i18n import _catalog
    from worker import extensions

    for name in PRELOAD:
        importlib.import_module(name)
    for name in extensions.enabled(os.environ):
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the worker reports it as its lastError
            print(f"zygote: extension {name} failed to import: {exc!r}", file=sys.stderr)
    if "postgres" in os.environ.get("DATABASE_URL", ""):
        importlib.import_module("tortoise.backends.asyncpg")
    warm_up()
    for locale in ("pt-BR", "en"):
        _catalog(locale)
    import httpx

    from shop.payments import gateways  # noqa: F401 - both Mercado Pago APIs, shared
    from shop.payments.mp_http import shared_ssl_context

    # The CA bundle (~4 MB) and httpx's lazy imports (~4 MB more), paid once for every worker
    # instead of in each one at its first sale.
    httpx.AsyncClient(verify=shared_ssl_context())
    gc.collect()
    _HOLE_FILLERS.extend(fill_pymalloc_holes())
    if PACK_HOT_CODE:
        # after the holes are filled, so the copies land side by side in fresh pools; the
        # originals they replace free blocks, filled again below
        hot_code.pack(hot_code.read_keys())
        gc.collect()
        _HOLE_FILLERS.extend(fill_pymalloc_holes())
    fill_malloc_holes()
    # Objects that exist now are never scanned again by the GC, so the children do not touch
    # (and copy) the pages that hold them.
    gc.freeze()
    if PAGE_SHARE:
        # last: from here on the zygote's memory is a file the workers map (worker/page_share.py)
        print(f"zygote: {page_share.share()}", file=sys.stderr, flush=True)


# Copy the code objects workers run next to each other (worker/hot_code.py); benches turn it
# off to measure what it saves.
PACK_HOT_CODE = True

# VITRINE_PAGE_SHARE: back the zygote's memory by a memfd so that workers can give their
# needless copies back (worker/page_share.py); set by main(), benches turn it off to compare.
PAGE_SHARE = True

# VITRINE_KSM: each worker opts its memory in to kernel same-page merging (fleet/ksm.py); set
# by main().
KSM = False

# Objects that occupy the free blocks of the zygote's partly used pymalloc pools (see below).
_HOLE_FILLERS: list[object] = []


def pymalloc_free_blocks() -> dict[int, int]:
    """{block size: free blocks in partly used pools}, from `sys._debugmallocstats()` (which
    writes to the C stderr)."""
    import tempfile

    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    free: dict[int, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and all(p.isdigit() for p in parts):
            free[int(parts[1])] = int(parts[4])
    return free


def _block(size: int, n: int) -> object:
    """An object that pymalloc serves from the `size` class (16-byte classes; untracked by GC)."""
    if size <= 16:
        return object()
    if size <= 32:
        return n + 0.5  # a float: 24 bytes
    return bytes(size - 33)  # header 33 bytes + payload


def fill_pymalloc_holes(rounds: int = 4) -> list[object]:
    """Fill the free blocks of the zygote's partly used pymalloc pools with objects kept for
    the process's life. A forked worker's small allocations then go to fresh pools (a few
    dense pages) instead of into free blocks scattered over hundreds of inherited pages, each
    of which the kernel would copy for the sake of a few bytes."""
    keep: list[object] = []
    for _ in range(rounds):
        free = pymalloc_free_blocks()
        if sum(free.values()) < 64:
            break
        for size, count in free.items():
            keep.extend(_block(size, n) for n in range(count))
    return keep


def warm_up() -> None:
    """Run, once and here, the start-up paths every worker takes (settings, logging, the vault,
    tortoise's registry and a first query, a Redis round trip), so that their one-time work
    (lazy imports, OpenSSL's tables, regex and type caches, the model registry) is done before
    the fork instead of in each worker's copy-on-write memory. Best effort: a part that cannot
    run here (configuration error, database or Redis down) is left to the workers, which report
    it themselves."""
    from core.errors import ConfigError
    from core.settings import load_settings

    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        print(f"zygote: not warmed up: {exc}", file=sys.stderr, flush=True)
        return
    for step in (_warm_logging, _warm_vault, _warm_db, _warm_redis):
        try:
            step(settings)
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation only
            print(f"zygote: {step.__name__} skipped: {exc!r}", file=sys.stderr, flush=True)


def _warm_logging(settings: Settings) -> None:
    from worker.main import apply_log_levels

    apply_log_levels(settings)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - closed below
    handler.setFormatter(JsonFormatter("worker"))
    record = logging.LogRecord("worker", logging.INFO, __file__, 0, "warm %s", ("up",), None)
    handler.emit(record)
    handler.close()
    handler.stream.close()


def _warm_vault(settings: Settings) -> None:
    from core.vault import TokenVault

    vault = TokenVault(settings.token_encryption_keys)
    vault.decrypt(vault.encrypt("warm-up")).reveal()


def _warm_db(settings: Settings) -> None:
    from core.db import prepare_models
    from worker.main import warm_queries

    # the workers' pool: no PostgreSQL connection kept while idle (core.pg_pool)
    prepare_models(settings.database_url, probe=warm_queries, lean=True)


def _warm_redis(settings: Settings) -> None:
    from core import redis as core_redis
    from fleet.runtime import RuntimeStore

    async def ping() -> None:
        client = core_redis.connect(settings.redis_url)
        try:
            await RuntimeStore(client).get(0)
        finally:
            await client.aclose()

    asyncio.run(asyncio.wait_for(ping(), 5))


def worker_nice() -> int:
    """How much lower the workers' CPU priority is than the orchestrator's and the zygote's
    (VITRINE_WORKER_NICE, default 5; 0: the same). Under load the control plane then still
    gets the CPU to replace a crashed bot within milliseconds (docs/orchestrator.md)."""
    return tuning_int("VITRINE_WORKER_NICE", 5, 0, 19)


def _child(
    instance_id: int, fds: list[int], lease: str | None = None, start: object = None
) -> None:
    """In the forked child: drop the zygote's fds and signal set-up, run the worker, exit."""
    from worker.main import detach, run_instance

    signal.set_wakeup_fd(-1)
    for fd in fds:
        os.close(fd)
    code = 70  # EX_SOFTWARE if something below raises
    try:
        detach(instance_id, tuning_path("LOG_DIR", "logs"))
        try:
            os.nice(worker_nice())
        except TuningError as exc:
            print(f"configuration error: {exc}", file=sys.stderr, flush=True)
            code = 78  # ExitCode.CONFIG (fleet.exitcodes is not imported here)
            return
        if KSM:
            with contextlib.suppress(OSError):  # the orchestrator logs why, once (fleet.ksm)
                ksm.opt_in()
        code = run_instance(instance_id, lease=lease, start=start)
    finally:
        os._exit(code)


class Zygote:
    def __init__(self) -> None:
        self.buffer = b""
        self.extra_fds: list[int] = []  # the selector's epoll fd: not for the children
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd fires
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C is for the orchestrator to handle

    def send(self, msg: bytes) -> None:
        os.write(1, msg)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send(zp.exited(pid, os.waitstatus_to_exitcode(status)))

    def spawn(
        self, seq: int, instance_id: int, lease: str | None = None, start: object = None
    ) -> None:
        pid = os.fork()
        if pid == 0:
            _child(instance_id, [self.wake_r, self.wake_w, *self.extra_fds], lease, start)
        self.send(zp.spawned(seq, instance_id, pid))

    def handle(self, line: bytes) -> None:
        try:
            msg = zp.decode(line)
            if msg.get(zp.OP) == zp.SPAWN:
                self.spawn(*zp.spawn_args(msg))
        except (ValueError, KeyError, TypeError) as exc:
            # not the line itself: a spawn request carries the token's ciphertext
            print(
                f"zygote: bad request ({len(line)} bytes): {type(exc).__name__}",
                file=sys.stderr,
                flush=True,
            )

    def serve(self) -> None:
        sel = selectors.DefaultSelector()
        self.extra_fds.append(sel.fileno())
        sel.register(0, selectors.EVENT_READ, "stdin")
        sel.register(self.wake_r, selectors.EVENT_READ, "signal")
        self.send(zp.ready(os.getpid()))
        while True:
            for key, _ in sel.select():
                if key.data == "signal":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self.reap()
                    continue
                chunk = os.read(0, 65536)
                if not chunk:
                    return
                self.buffer += chunk
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    if line.strip():
                        self.handle(line)


def main() -> None:
    global KSM, PAGE_SHARE
    try:
        worker_nice()  # a bad value stops the zygote now, not each worker later
        pg_pool.check_tuning()
        KSM = ksm.requested()
        PAGE_SHARE = page_share.requested()
    except TuningError as exc:
        print(f"zygote: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(78)
    preload()
    Zygote().serve()


if __name__ == "__main__":
    main()

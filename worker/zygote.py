"""The zygote: a template process that imported disnake and the project once, then forks one
worker per request (`python -m worker.zygote`, started by the orchestrator).

Protocol: JSON lines. stdin: {"op": "spawn", "seq": N, "instance_id": ID}. stdout:
{"op": "spawned", "seq": N, "instance_id": ID, "pid": P} and, when a child ends,
{"op": "exited", "pid": P, "code": C} (C < 0: killed by signal -C). EOF on stdin (the
orchestrator is gone) ends the zygote; its children are in their own sessions and keep running.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import selectors
import signal
import sys
from pathlib import Path

PRELOAD = [
    "asyncio", "logging.handlers", "json", "aiohttp", "disnake", "disnake.ext.commands",
    "redis.asyncio", "tortoise", "tortoise.backends.sqlite", "cryptography.fernet",
    "core.settings", "core.db", "core.vault", "core.logging", "core.i18n", "core.redis",
    "fleet.runtime", "fleet.models", "shop.models", "core.models", "aerich.models",
    "worker.bot", "worker.lifecycle",
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
    for locale in ("pt-BR", "en"):
        _catalog(locale)
    import httpx

    from shop.payments.mercadopago import shared_ssl_context

    # The CA bundle (~4 MB) and httpx's lazy imports (~4 MB more), paid once for every worker
    # instead of in each one at its first sale.
    httpx.AsyncClient(verify=shared_ssl_context())
    gc.collect()
    # Objects that exist now are never scanned again by the GC, so the children do not touch
    # (and copy) the pages that hold them.
    gc.freeze()


def _child(instance_id: int, fds: list[int]) -> None:
    """In the forked child: drop the zygote's fds and signal set-up, run the worker, exit."""
    from worker.main import detach, run_instance

    signal.set_wakeup_fd(-1)
    for fd in fds:
        os.close(fd)
    code = 70  # EX_SOFTWARE if something below raises
    try:
        detach(instance_id, Path(os.environ.get("LOG_DIR", "logs") or "logs"))
        code = run_instance(instance_id)
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

    def send(self, msg: dict[str, object]) -> None:
        os.write(1, (json.dumps(msg) + "\n").encode())

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def spawn(self, seq: int, instance_id: int) -> None:
        pid = os.fork()
        if pid == 0:
            _child(instance_id, [self.wake_r, self.wake_w, *self.extra_fds])
        self.send({"op": "spawned", "seq": seq, "instance_id": instance_id, "pid": pid})

    def handle(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
            if msg.get("op") == "spawn":
                self.spawn(int(msg["seq"]), int(msg["instance_id"]))
        except (ValueError, KeyError, TypeError) as exc:
            print(f"zygote: bad request {line[:200]!r}: {exc}", file=sys.stderr, flush=True)

    def serve(self) -> None:
        sel = selectors.DefaultSelector()
        self.extra_fds.append(sel.fileno())
        sel.register(0, selectors.EVENT_READ, "stdin")
        sel.register(self.wake_r, selectors.EVENT_READ, "signal")
        self.send({"op": "ready", "pid": os.getpid()})
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
    preload()
    Zygote().serve()


if __name__ == "__main__":
    main()

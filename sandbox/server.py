"""Run the Discord and Mercado Pago stand-ins in one process (in-process or as a subprocess)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.discord.app import build_app as build_discord_app
from sandbox.discord.http_util import STATE_KEY
from sandbox.discord.state import DiscordConfig, DiscordState

log = logging.getLogger("sandbox")


def check_loopback(host: str) -> None:
    """Refuse to bind anything but a loopback address."""
    if host == "localhost":
        return
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"the sandbox binds loopback only, not {host!r}")


def _build_mp_app(webhook_secret: str | None) -> web.Application | None:
    """The Mercado Pago app, or None while that package is missing."""
    try:
        from sandbox.mercadopago.app import build_app as build_mp_app
    except ImportError as exc:
        log.warning("Mercado Pago stand-in unavailable (%s); running Discord only", exc)
        return None
    config: Any = None
    if webhook_secret:
        from sandbox.mercadopago.config import MercadoPagoConfig

        config = MercadoPagoConfig(webhook_secret=webhook_secret)
    return build_mp_app(config)


def _mp_state(app: web.Application | None) -> Any:
    if app is None:
        return None
    try:
        from sandbox.mercadopago.keys import MP_STATE
    except ImportError:
        return None
    return app.get(MP_STATE)


@dataclass
class RunningSandbox:
    """Handles and base URLs of a started sandbox."""

    host: str
    discord_port: int
    mp_port: int | None
    discord_app: web.Application
    mp_app: web.Application | None = None
    runners: list[web.AppRunner] = field(default_factory=list)

    @property
    def discord_state(self) -> DiscordState:
        return self.discord_app[STATE_KEY]

    @property
    def mp_state(self) -> Any:
        return _mp_state(self.mp_app)

    @property
    def discord_base(self) -> str:
        return f"http://{self.host}:{self.discord_port}"

    @property
    def discord_api_base(self) -> str:
        return f"{self.discord_base}/api/v10"

    @property
    def oauth_base(self) -> str:
        return self.discord_base

    @property
    def mp_api_base(self) -> str | None:
        return f"http://{self.host}:{self.mp_port}" if self.mp_port else None

    def urls(self) -> dict[str, str | None]:
        return {
            "DISCORD_API_BASE": self.discord_api_base,
            "DISCORD_OAUTH_BASE": self.oauth_base,
            "MERCADOPAGO_API_BASE": self.mp_api_base,
            "SANDBOX_CONTROL_URL": self.discord_base,
        }


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # handler_cancellation off (aiohttp's default, said out loud): a request fully received
    # takes effect even when its client hangs up first, as on Discord's side
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=2.0, handler_cancellation=False
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner, runner.addresses[0][1]


@contextlib.asynccontextmanager
async def run_sandbox(
    host: str = "127.0.0.1",
    discord_port: int = 0,
    mp_port: int | None = 0,
    *,
    mp_webhook_secret: str | None = None,
    discord_config: DiscordConfig | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Serve both stand-ins on the current loop; port 0 picks a free port, None skips MP."""
    check_loopback(host)
    discord_app = build_discord_app(config=discord_config)
    runner, dport = await _start(discord_app, host, discord_port)
    sb = RunningSandbox(host, dport, None, discord_app, runners=[runner])
    sb.discord_state.config.base_url = sb.discord_base
    try:
        if mp_port is not None:
            sb.mp_app = _build_mp_app(mp_webhook_secret)
            if sb.mp_app is not None:
                mp_runner, sb.mp_port = await _start(sb.mp_app, host, mp_port)
                sb.runners.append(mp_runner)
        yield sb
    finally:
        for r in reversed(sb.runners):
            await r.cleanup()


def _write_ready_file(path: str, data: dict[str, Any]) -> None:
    """Atomically write the base URLs (readers never see a partial file)."""
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


async def _serve(args: argparse.Namespace) -> None:
    config = DiscordConfig(heartbeat_interval_ms=args.heartbeat_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_sandbox(
        args.host,
        args.discord_port,
        None if args.no_mp else args.mp_port,
        mp_webhook_secret=args.mp_webhook_secret,
        discord_config=config,
    ) as sb:
        if args.mp_notification_url and sb.mp_state is not None:
            # The URL set in Mercado Pago's panel: where order notifications go (the Orders
            # API takes no per-charge notification_url).
            sb.mp_state.config.default_notification_url = args.mp_notification_url
        urls = sb.urls()
        for key, value in urls.items():
            if value:
                print(f"{key}={value}", flush=True)
        if args.ready_file:
            _write_ready_file(args.ready_file, dict(urls, pid=os.getpid()))
        await stop.wait()
        log.info("sandbox stopping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Fake Discord + Mercado Pago on loopback"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--discord-port", type=int, default=8900)
    parser.add_argument("--mp-port", type=int, default=8901)
    parser.add_argument("--no-mp", action="store_true", help="run the Discord stand-in only")
    parser.add_argument("--mp-webhook-secret", default=None)
    parser.add_argument(
        "--mp-notification-url", default=None, help="the panel's webhook URL (Orders API)"
    )
    parser.add_argument("--heartbeat-interval", type=int, default=41250, help="gateway, in ms")
    parser.add_argument("--ready-file", default=None, help="write the base URLs here as JSON")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        check_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(args))
    return 0


class SandboxProcess:
    """`python -m sandbox` as a child process; `.urls` once ready (for e2e tests, benches)."""

    def __init__(
        self, *extra_args: str, env: dict[str, str] | None = None, timeout: float = 15.0
    ) -> None:
        self.extra_args = list(extra_args)
        self.env = env
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.urls: dict[str, Any] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="vitrine-sandbox-")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> SandboxProcess:
        ready = Path(self._dir.name) / "ready.json"
        cmd = [
            sys.executable,
            "-m",
            "sandbox",
            "--discord-port",
            "0",
            "--mp-port",
            "0",
            "--ready-file",
            str(ready),
            *self.extra_args,
        ]
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + self.timeout
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sandbox process did not become ready")
            time.sleep(0.02)
        self.urls = json.loads(ready.read_text())
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                # tearing down ~2,000 sockets took more than 5 s after SIGKILL (2,000-bot bench),
                # and more than 60 s once while 2,000 workers exited at the same time: the
                # kernel finishes it; a caller is not failed for the wait
                try:
                    self.proc.wait(180)
                except subprocess.TimeoutExpired:
                    print(
                        f"sandbox process {self.proc.pid} still exiting 180 s after SIGKILL; "
                        "left to the kernel",
                        file=sys.stderr,
                    )
        self._dir.cleanup()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

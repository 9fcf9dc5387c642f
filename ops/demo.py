"""`vitrine demo`: the whole platform against the offline sandbox, with a seeded store.

`vitrine demo` starts `python -m sandbox` (Discord + Mercado Pago stand-ins), prepares a demo
directory (its own `supervisord.conf`, `data/`, `logs/`), migrates, seeds a store whose bot sells
in a sandbox guild, runs supervisord as a child and waits for the portal and the bot. Ctrl-C
stops the bots, supervisord and the sandbox. `vitrine demo buy`, from another terminal, runs a
real purchase as the sandbox buyer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from core.tuning import tuning_int, tuning_path
from ops.demo_buyer import demo_purchase
from ops.demo_seed import (  # noqa: F401 - re-exported: the demo's fixed world
    DEMO_BOT_TOKEN,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    MANAGE_GUILD,
    PRODUCT,
    STATE_FILE,
    STORE_NAME,
    VARIATIONS,
    DemoConfig,
    seed,
)
from ops.errors import CliError
from ops.process_tools import pids_with_env

ROOT = Path(__file__).resolve().parent.parent

# Fixed demo credentials: the sandbox accepts them, real Discord and Mercado Pago never see them.
DEMO_MP_ACCESS_TOKEN = "TEST-vitrine-demo-access-token"  # noqa: S105
DEMO_WEBHOOK_SECRET = "vitrine-demo-webhook-secret-0123456789abcdef"  # noqa: S105
MARKER = "VITRINE_DEMO_DIR"  # in the environment of every process the demo starts


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    def port(value: int | None, var: str, default: int) -> int:
        return value if value is not None else tuning_int(var, default, 1, 65535)

    return DemoConfig(
        dir=Path(args.dir or tuning_path("VITRINE_DEMO_DIR_PATH", str(ROOT / "demo"))).resolve(),
        discord_port=port(args.discord_port, "VITRINE_DEMO_DISCORD_PORT", 8900),
        mp_port=port(args.mp_port, "VITRINE_DEMO_MP_PORT", 8901),
        portal_port=port(args.portal_port, "VITRINE_DEMO_PORTAL_PORT", 3100),
        admin_port=port(args.admin_port, "VITRINE_DEMO_ADMIN_PORT", 3000),
        redis_url=args.redis_url or os.environ.get("VITRINE_DEMO_REDIS_URL"),
        stock=args.stock,
    )


def settings_env(cfg: DemoConfig) -> dict[str, str]:
    """The platform settings of the demo (the generated secrets stay in data/secrets.env)."""
    env = {
        "VITRINE_ENV": "development",
        "DATA_DIR": str(cfg.dir / "data"),
        "LOG_DIR": str(cfg.dir / "logs"),
        "PORTAL_PORT": str(cfg.portal_port),
        "PORTAL_BIND": "127.0.0.1",
        "ADMIN_PORT": str(cfg.admin_port),
        "ADMIN_BIND": "127.0.0.1",
        "PUBLIC_BASE_URL": cfg.portal,
        "DISCORD_API_BASE": f"{cfg.discord_base}/api/v10",
        "DISCORD_OAUTH_BASE": cfg.discord_base,
        "DISCORD_CLIENT_ID": DEMO_CLIENT_ID,
        "DISCORD_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "MERCADOPAGO_API_BASE": cfg.mp_base,
        "MERCADOPAGO_ACCESS_TOKEN": DEMO_MP_ACCESS_TOKEN,
        "MERCADOPAGO_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
        "MERCADOPAGO_API": "orders",  # what a new install gets (docs/configuration.md)
        "ORCHESTRATOR_NODE": cfg.node,
        # quicker panel refreshes than production, same code path
        "VITRINE_PANEL_REFRESH_S": "2",
    }
    if cfg.redis_url:
        env["REDIS_URL"] = cfg.redis_url
    return env


def process_env(cfg: DemoConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(settings_env(cfg))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[MARKER] = str(cfg.dir)
    return env


def load_demo_settings(cfg: DemoConfig) -> Any:
    from core.errors import ConfigError
    from core.settings import load_settings

    try:
        return load_settings(environ=process_env(cfg), env_file=None)
    except ConfigError as exc:
        raise CliError(exc.one_line()) from None


KEEP = ("secrets.env", "secrets.env.lock")


def prepare_dir(cfg: DemoConfig) -> None:
    """The demo's directory, with a fresh data/ (but the same generated secrets).

    The sandbox keeps nothing between runs and numbers its payments from the same first id, so
    orders, payments and delivery queues of an earlier run would point at payments that no
    longer exist, or at the new run's payments with the same id: each start begins afresh."""
    from ops.supervisorctl import is_running

    if cfg.conf.is_file() and is_running(cfg.conf):
        raise CliError(f"a supervisord already runs for {cfg.conf}: is another demo running?")
    for sub in ("data", "logs", "logs/instances"):
        (cfg.dir / sub).mkdir(parents=True, exist_ok=True)
    for path in (cfg.dir / "data").iterdir():
        if path.name not in KEEP:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copy(ROOT / "supervisord.conf", cfg.conf)
    # `cd demo && vitrine instances` etc. read this .env (the services get the same values).
    lines = [f"{k}={v}" for k, v in settings_env(cfg).items() if k not in ("DATA_DIR", "LOG_DIR")]
    (cfg.dir / ".env").write_text(
        "# written by `vitrine demo`: sandbox settings\n"
        "DATA_DIR=data\nLOG_DIR=logs\n" + "\n".join(lines) + "\n"
    )


# --- child processes ----------------------------------------------------------------------
def start_sandbox(cfg: DemoConfig) -> subprocess.Popen[bytes]:
    ready = cfg.dir / "data" / "sandbox-ready.json"
    ready.unlink(missing_ok=True)
    out = open(cfg.dir / "sandbox.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--discord-port",
            str(cfg.discord_port),
            "--mp-port",
            str(cfg.mp_port),
            "--mp-webhook-secret",
            DEMO_WEBHOOK_SECRET,
            "--mp-notification-url",  # the Orders API notifies the panel's URL
            f"{cfg.portal}/webhooks/mercadopago",
            "--ready-file",
            str(ready),
        ],
        cwd=ROOT,
        env=process_env(cfg),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 20
    while not ready.exists():
        if proc.poll() is not None:
            raise CliError(
                f"the sandbox did not start (ports {cfg.discord_port}/{cfg.mp_port} "
                f"busy? use --discord-port/--mp-port); see {cfg.dir / 'sandbox.log'}"
            )
        if time.monotonic() > deadline:
            stop_process(proc)
            raise CliError("the sandbox did not become ready in 20 s")
        time.sleep(0.05)
    return proc


def start_supervisord(cfg: DemoConfig) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "supervisord"
    return subprocess.Popen(
        [str(binary) if binary.exists() else "supervisord", "-n", "-c", str(cfg.conf)],
        cwd=cfg.dir,
        env=process_env(cfg),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def demo_processes(directory: Path) -> list[int]:
    """Pids (other than this one) whose environment carries this demo's marker."""
    return pids_with_env(MARKER, str(directory))


# --- seeding --------------------------------------------------------------------------------
def wait_until(what: str, check: Any, timeout: float, procs: list[Any]) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise CliError(f"a demo process exited while waiting for {what}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            result = check()
            if result:
                return result
        time.sleep(0.25)
    raise CliError(f"{what}: not reached in {timeout:.0f} s (logs in the demo's logs/)")


def portal_healthy(cfg: DemoConfig) -> bool:
    response = httpx.get(f"{cfg.portal}/health", timeout=2)
    return response.status_code == 200 and response.json().get("status") == "ok"


async def instance_state(settings: Any, instance_id: int) -> str | None:
    from core import redis as core_redis
    from fleet.runtime import RuntimeStore

    redis = core_redis.connect(settings.redis_url)
    try:
        record = await RuntimeStore(redis).get(instance_id)
        return None if record is None else str(record.state)
    finally:
        await redis.aclose()


def bot_online(cfg: DemoConfig, settings: Any, state: dict[str, Any]) -> bool:
    app = state["bot"]["application_id"]
    info = httpx.get(f"{cfg.discord_base}/_sandbox/bots/{app}", timeout=2).json()
    if not info.get("open_connections"):
        return False  # a runtime record left by an earlier run is not enough
    return asyncio.run(instance_state(settings, state["instance_id"])) == "online"


# --- commands -------------------------------------------------------------------------------
class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop


def cmd_demo(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "buy":
        return cmd_demo_buy(args)
    from ops.migrations import apply

    cfg = config_from_args(args)
    prepare_dir(cfg)
    settings = load_demo_settings(cfg)
    if settings.embedded_redis and shutil.which("redis-server") is None:
        raise CliError("redis-server is not installed (Debian: apt-get install redis-server)")
    sandbox = supervisord = None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        print(f"demo directory: {cfg.dir}", flush=True)
        print(
            f"starting the sandbox (Discord :{cfg.discord_port}, Mercado Pago :{cfg.mp_port}) ...",
            flush=True,
        )
        sandbox = start_sandbox(cfg)
        print("applying migrations ...", flush=True)
        asyncio.run(_migrate(apply, settings.database_url))
        print("seeding the demo store (bot, guild, buyer, product, stock) ...", flush=True)
        state = asyncio.run(seed(cfg, settings))
        print(f"starting supervisord ({cfg.conf}) ...", flush=True)
        supervisord = start_supervisord(cfg)
        procs = [sandbox, supervisord]
        wait_until("portal /health", lambda: portal_healthy(cfg), 60, procs)
        print(f"portal healthy: {cfg.portal}/health", flush=True)
        wait_until("bot online", lambda: bot_online(cfg, settings, state), 60, procs)
        print(f"bot online: instance {state['instance_id']} ({STORE_NAME})", flush=True)
        _print_welcome(cfg, state)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a demo process exited; stopping the demo", flush=True)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("\nstopping the demo ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _shutdown(cfg, settings, sandbox, supervisord)
        signal.signal(signal.SIGTERM, previous)


async def _migrate(apply: Any, url: str) -> None:
    from core.db import close_db

    try:
        for name in await apply(url):
            print(f"  applied {name}", flush=True)
    finally:
        await close_db()


def _shutdown(cfg: DemoConfig, settings: Any, sandbox: Any, supervisord: Any) -> None:
    if supervisord is not None and supervisord.poll() is None:
        from orchestrator.stop_all import stop_all

        with contextlib.suppress(Exception):
            asyncio.run(stop_all(settings, cfg.node, 15))
    stop_process(supervisord)
    stop_process(sandbox)
    for pid in demo_processes(cfg.dir):  # anything left behind (a worker of a killed parent)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    print("demo stopped", flush=True)


def _print_welcome(cfg: DemoConfig, state: dict[str, Any]) -> None:
    here = "" if cfg.dir == (ROOT / "demo") else f" --dir {cfg.dir}"
    print(
        f"""
Vitrine demo is running (offline: Discord and Mercado Pago are the sandbox).

  portal:        {cfg.portal}/
  log in:        {cfg.portal}/auth/discord   (the sandbox login page: pick "vendedor")
  admin API:     http://127.0.0.1:{cfg.admin_port}/api/status  (token in {cfg.dir}/data/secrets.env)
  services:      supervisorctl -c {cfg.conf} status
  logs:          {cfg.dir}/logs/

Buy something as the sandbox buyer (another terminal):

  .venv/bin/vitrine demo buy{here}

Ctrl-C stops the bot, the services and the sandbox.
demo ready""",
        flush=True,
    )


def cmd_demo_buy(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    path = cfg.dir / "data" / STATE_FILE
    if not path.is_file():
        raise CliError(f"no demo found in {cfg.dir}: start `vitrine demo` first")
    state = json.loads(path.read_text())
    variation = (
        state["variations"][args.variation - 1] if args.variation else state["variations"][0]
    )
    try:
        item = asyncio.run(demo_purchase(state, variation, echo=True))
    except httpx.HTTPError as exc:
        raise CliError(
            f"the demo does not answer ({type(exc).__name__}): is `vitrine demo` running?"
        ) from None
    print(f"delivered item: {item}", flush=True)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=["buy"],
        help="buy: run a purchase as the sandbox buyer against a running demo",
    )
    p.add_argument("--dir", help="demo directory (default: demo/ in the repository)")
    p.add_argument("--discord-port", type=int, help="sandbox Discord port (8900)")
    p.add_argument("--mp-port", type=int, help="sandbox Mercado Pago port (8901)")
    p.add_argument("--portal-port", type=int, help="portal port (3100)")
    p.add_argument("--admin-port", type=int, help="admin API port (3000)")
    p.add_argument("--redis-url", help="use this Redis instead of the embedded one")
    p.add_argument("--stock", type=int, default=20, help="top each variation's stock up to N")
    p.add_argument("--variation", type=int, choices=[1, 2], help="buy: which variation (1)")

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
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.tuning import tuning_int, tuning_path
from ops.errors import CliError
from ops.process_tools import pids_with_env

ROOT = Path(__file__).resolve().parent.parent

# Fixed demo credentials: the sandbox accepts them, real Discord and Mercado Pago never see them.
DEMO_BOT_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.demo00.vitrine-demo-bot-token-0000000000"  # noqa: S105
DEMO_MP_ACCESS_TOKEN = "TEST-vitrine-demo-access-token"  # noqa: S105
DEMO_WEBHOOK_SECRET = "vitrine-demo-webhook-secret-0123456789abcdef"  # noqa: S105
DEMO_CLIENT_ID = "100000000000000042"
DEMO_CLIENT_SECRET = "vitrine-demo-oauth-client-secret"  # noqa: S105
STORE_NAME = "Loja Demo"
PRODUCT = "Netflix"
VARIATIONS = (("1 mês", 1990), ("3 meses", 4990))
MANAGE_GUILD = 1 << 5
STATE_FILE = "demo-state.json"
MARKER = "VITRINE_DEMO_DIR"  # in the environment of every process the demo starts


@dataclass(frozen=True)
class DemoConfig:
    dir: Path
    discord_port: int = 8900
    mp_port: int = 8901
    portal_port: int = 3100
    admin_port: int = 3000
    redis_url: str | None = None
    stock: int = 20

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def discord_base(self) -> str:
        return f"http://127.0.0.1:{self.discord_port}"

    @property
    def mp_base(self) -> str:
        return f"http://127.0.0.1:{self.mp_port}"

    @property
    def conf(self) -> Path:
        return self.dir / "supervisord.conf"

    @property
    def node(self) -> str:
        return "demo-" + hashlib.sha1(str(self.dir).encode()).hexdigest()[:8]  # noqa: S324


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
    from core.settings import ConfigError, load_settings

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
async def seed(cfg: DemoConfig, settings: Any) -> dict[str, Any]:
    """Idempotent: the sandbox world is new on every start, the database rows are upserted
    (a fresh database gets them created)."""
    from core.db import close_db, init_db
    from core.vault import TokenVault
    from fleet.models import BotInstance
    from sandbox.discord.client import DiscordSandbox
    from shop.models import Account, Product, StockItem, Tenant, Variation
    from shop.states import StockStatus
    from shop.stock import add_stock

    async with DiscordSandbox(cfg.discord_base) as dc:
        bot = await dc.create_bot(STORE_NAME, token=DEMO_BOT_TOKEN)
        seller = await dc.create_user("vendedor")
        raw = await dc.call(
            "POST",
            "/_sandbox/guilds",
            json={
                "name": "Servidor Demo",
                "owner_id": seller["id"],
                "channels": [{"name": "loja"}, {"name": "vendas"}],
                "roles": [{"name": "Cliente"}, {"name": "Equipe", "permissions": MANAGE_GUILD}],
                "bots": [bot.application_id],
            },
        )
        guild = await dc.guild(raw["id"])
        staff = await dc.buyer("equipe")
        await dc.add_member(guild, staff.id, roles=["Equipe"])
        buyer = await dc.buyer("ana", guilds=[guild])
        await dc.create_oauth_app(
            [f"{cfg.portal}/auth/callback"],
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
        )

    vault = TokenVault(settings.token_encryption_keys)
    await init_db(settings.database_url)
    try:
        tenant = await Tenant.filter(name=STORE_NAME).order_by("id").first()
        if tenant is None:
            owner = await Account.create(discord_id=seller["id"], username="vendedor")
            tenant = await Tenant.create(owner=owner, name=STORE_NAME)
        else:
            await Account.filter(id=tenant.owner_id).update(
                discord_id=seller["id"],  # type: ignore[attr-defined]
                blocked=False,
            )
        tenant.guild_id = guild.id
        tenant.sales_log_channel_id = guild.channel("vendas")
        tenant.buyer_role_id = guild.role("Cliente")
        await tenant.save()
        inst = await BotInstance.filter(tenant=tenant).order_by("id").first()
        if inst is None:
            inst = await BotInstance.create(
                tenant=tenant, name=STORE_NAME, token_enc=vault.encrypt(DEMO_BOT_TOKEN)
            )
        else:
            inst.token_enc = vault.encrypt(DEMO_BOT_TOKEN)
            inst.config_version += 1
            inst.suspended = False
            await inst.save()
        product = await Product.filter(tenant=tenant, name=PRODUCT).first()
        if product is None:
            product = await Product.create(
                tenant=tenant, name=PRODUCT, description="Conta premium (demo)", max_per_order=5
            )
        variations = []
        for name, price in VARIATIONS:
            variation = await Variation.filter(product=product, name=name).first()
            if variation is None:
                variation = await Variation.create(
                    tenant=tenant, product=product, name=name, price_cents=price
                )
            have = await StockItem.filter(variation=variation, status=StockStatus.AVAILABLE).count()
            if have < cfg.stock:
                stamp = time.strftime("%Y%m%d%H%M%S")
                lines = [f"DEMO-{variation.id}-{stamp}-{n:03d}" for n in range(cfg.stock - have)]
                await add_stock(
                    vault,
                    tenant.id,
                    variation.id,
                    "\n".join(lines),
                    "demo",
                    hash_key=settings.stock_hash_key,
                )
            variations.append({"id": variation.id, "name": name, "price_cents": price})
    finally:
        await close_db()
    state = {
        "discord_base": cfg.discord_base,
        "mp_base": cfg.mp_base,
        "portal": cfg.portal,
        "admin": f"http://127.0.0.1:{cfg.admin_port}",
        "bot": {"application_id": bot.application_id, "user_id": bot.user_id, "name": bot.name},
        "guild_id": guild.id,
        "shop_channel": guild.channel("loja"),
        "seller": seller,
        "staff": staff.user,
        "buyer": buyer.user,
        "tenant_id": tenant.id,
        "instance_id": inst.id,
        "product": PRODUCT,
        "variations": variations,
    }
    (cfg.dir / "data" / STATE_FILE).write_text(json.dumps(state, indent=1))
    return state


# --- waiting --------------------------------------------------------------------------------
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


@dataclass
class _Store:
    bot: Any
    guild: Any
    staff: Any
    shop_channel: str


async def demo_purchase(
    state: dict[str, Any], variation: dict[str, Any], echo: bool = False, approve: bool = True
) -> str | None:
    """The real storefront flow as the sandbox buyer; returns the delivered item (or None
    when `approve` is false: the order then stays pending with its PIX)."""
    from ops.demo_buyer import buy, order_id_of, post_panel
    from sandbox.discord.client import Bot, Buyer, DiscordSandbox
    from sandbox.mercadopago.client import MercadoPagoSandboxClient

    def say(msg: str) -> None:
        if echo:
            print(msg, flush=True)

    async with (
        DiscordSandbox(state["discord_base"]) as dc,
        MercadoPagoSandboxClient(state["mp_base"]) as mp,
    ):
        b = state["bot"]
        bot = Bot(b["application_id"], "", b["user_id"], b["name"])
        guild = await dc.guild(state["guild_id"])
        staff = Buyer(dc, state["staff"], "pt-BR")
        buyer = Buyer(dc, state["buyer"], "pt-BR")
        store = _Store(bot, guild, staff, state["shop_channel"])
        say("1. staff posts /painel in #loja")
        panel = await post_panel(store, state["product"])
        say(f"   panel: {panel.embeds[0]['title']}")
        before = {p["id"] for p in await mp.payments()}
        say(f"2. buyer {state['buyer']['username']} picks {variation['name']} and confirms")
        pix = await buy(buyer, panel, variation["id"])
        if pix.message is None or not any(
            i.startswith("vt:cancel:") for i in pix.message.custom_ids()
        ):
            raise CliError(f"the bot answered without a PIX: {pix.content or pix.message}")
        order_id = order_id_of(pix)
        code = next(
            (line for line in pix.message.text().split("\n") if line.startswith("000201")), ""
        )
        say(f"3. PIX shown for order #{order_id}" + (f": {code[:40]}…" if code else ""))
        new = [p for p in await mp.payments() if p["id"] not in before]
        payment = max(new, key=lambda p: p["id"])
        if not approve:
            return None
        had = {m["id"] for m in await buyer.dms()}
        await mp.approve(payment["id"])
        say(
            f"4. payment {payment['id']} approved in the Mercado Pago sandbox; the sandbox "
            "sends the signed webhook to the portal"
        )
        dm = await buyer.wait_dm(lambda m: m["id"] not in had and m.embeds, timeout=30)
        items = [line for line in dm.text().split("\n") if line.startswith("DEMO-")]
        say(f"5. the bot delivered order #{order_id} by DM")
        return items[0] if items else dm.text()


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

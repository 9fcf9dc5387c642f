"""End-to-end harness: a real orchestrator subprocess (zygote + workers) against the sandbox,
a fresh SQLite database and a real Redis; shortened policy constants through the environment.

Shared by the test suite (`tests/`) and the benchmarks (`bench/`), which must not import each
other; also a store whose bot sells in a sandbox guild (`make_store`) and the payment services
the portal's webhook handler uses (`payment_services`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis

from core.vault import TokenVault, generate_key
from fleet import keys
from fleet.runtime import RuntimeRecord, RuntimeStore
from fleet.states import InstanceState
from ops.process_tools import kill_all_with_env, pids_with_env

if TYPE_CHECKING:
    from sandbox.discord.client import Buyer, DiscordSandbox, GuildInfo
    from sandbox.server import RunningSandbox

ROOT = Path(__file__).resolve().parents[1]

# Same code path as production, shorter clock: backoff 0, 1, 2, 4 ... s; stuck after 3 s.
FAST_POLICY = {
    "VITRINE_POLICY_BASE_DELAY": "1.0",
    "VITRINE_POLICY_MAX_DELAY": "8",
    "VITRINE_POLICY_JITTER": "0.1",
    "VITRINE_POLICY_HEALTHY_AFTER": "600",
    "VITRINE_POLICY_STUCK_AFTER": "3",
    "VITRINE_POLICY_STOP_GRACE": "2",
    "VITRINE_ORCH_PASS_S": "0.5",
    "VITRINE_WORKER_HEARTBEAT_S": "0.5",
    "VITRINE_GUILD_READY_TIMEOUT": "0.1",
}


def node_processes(node: str) -> list[int]:
    """Pids whose environment names this test's orchestrator node (orchestrator, zygote,
    workers): found through /proc, so cleanup works even when Redis lost track of them."""
    return pids_with_env("ORCHESTRATOR_NODE", node)


def split_node_names(tag: str, ids: list[int]) -> tuple[str, str]:
    """Two node names for which rendezvous placement gives each node half of `ids`: random
    names leave one node empty now and then (1 in 32 for six bots)."""
    from fleet.leases import preferred_node

    for k in range(10_000):
        a, b = f"{tag}-a{k}", f"{tag}-b"
        if sum(preferred_node(i, {a, b}) == a for i in ids) == len(ids) // 2:
            return a, b
    raise AssertionError("no balanced node names found")


class Fleet:
    """One test's orchestrator node: env, database rows, the daemon process, observations."""

    def __init__(
        self,
        tmp: Path,
        database_url: str,
        redis_url: str,
        api_base: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.node = f"test-{uuid.uuid4().hex[:10]}"
        self.key = generate_key()
        self.vault = TokenVault([self.key])
        self.stock_hash_key = "fleet-stock-hash-key-0123456789"  # what workers hash stock with
        self.database_url = database_url
        self.redis_url = redis_url
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(tmp)),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DISCORD_API_BASE": api_base,
            "DATA_DIR": str(tmp / "data"),
            "LOG_DIR": str(tmp / "logs"),
            "TOKEN_ENCRYPTION_KEYS": self.key,
            "ADMIN_API_TOKEN": "t" * 32,
            "PORTAL_SESSION_SECRET": "s" * 32,
            "MERCADOPAGO_WEBHOOK_SECRET": "w" * 32,
            "ORCHESTRATOR_NODE": self.node,
            "STOCK_HASH_KEY": self.stock_hash_key,
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            **FAST_POLICY,
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        # what the command runs under, e.g. `ip netns exec <ns>` (ops.netns_harness)
        self.launcher: list[str] = []
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self.store = RuntimeStore(self.redis)
        self.runs = 0

    def peer(self) -> Fleet:
        """Another orchestrator node on the same database, Redis, sandbox and token key (as
        on a second machine); its output goes to its own folder."""
        folder = self.tmp / f"peer-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        other = Fleet(folder, self.database_url, self.redis_url, self.env["DISCORD_API_BASE"])
        other.key, other.vault = self.key, self.vault
        node = other.node
        other.env = {**self.env, "ORCHESTRATOR_NODE": node, "LOG_DIR": str(folder / "logs")}
        return other

    def rename(self, node: str) -> None:
        """Run as node `node` (before `start`)."""
        self.node = node
        self.env["ORCHESTRATOR_NODE"] = node

    # --- processes --------------------------------------------------------------------
    def start(self) -> None:
        self.runs += 1
        out = open(self.tmp / f"orchestrator.{self.runs}.out", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "orchestrator"],
            cwd=self.tmp,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return self.proc.wait(5)

    def output(self) -> str:
        texts = [p.read_text(errors="replace")[-4000:] for p in sorted(self.tmp.glob("*.out"))]
        return "\n".join(texts)

    async def cleanup(self) -> None:
        kill_all_with_env("ORCHESTRATOR_NODE", self.node)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        await self.redis.aclose()

    # --- database -----------------------------------------------------------------------
    async def add_instance(self, token: str, name: str = "Loja", **fields: Any) -> int:
        from fleet.models import BotInstance
        from shop.models.accounts import Account, Tenant

        owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username=name)
        tenant = await Tenant.create(owner=owner, name=name)
        inst = await BotInstance.create(
            tenant=tenant, name=name, token_enc=self.vault.encrypt(token), **fields
        )
        return inst.id

    # --- observations -------------------------------------------------------------------
    async def record(self, iid: int) -> RuntimeRecord | None:
        return await self.store.get(iid)

    async def wait_for(
        self,
        what: str,
        check,
        timeout: float = 15.0,  # noqa: ASYNC109
        every: float = 0.05,
    ) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            if self.proc is not None and self.proc.poll() is not None and self.runs:
                raise AssertionError(f"orchestrator exited: {self.output()}")
            await asyncio.sleep(every)
        raise AssertionError(f"timeout waiting for {what} (last {last!r})\n{self.output()}")

    async def wait_state(
        self,
        iid: int,
        state: InstanceState,
        timeout: float = 15.0,  # noqa: ASYNC109
        new_pid_than: int | None = None,
    ) -> RuntimeRecord:
        async def check() -> RuntimeRecord | None:
            rec = await self.record(iid)
            if rec and rec.state == state and (new_pid_than is None or rec.pid != new_pid_than):
                return rec
            return None

        return await self.wait_for(f"instance {iid} {state}", check, timeout)

    async def orchestrator_status(self) -> dict[str, str]:
        # the client decodes responses to str (core.redis: decode_responses=True)
        return cast(dict[str, str], await self.redis.hgetall(keys.orchestrator_status(self.node)))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    return True


# --- storefront: worker settings, a store selling in a sandbox guild, payments ----------
STOREFRONT_ENV = {
    "VITRINE_DELIVERY_CLAIM_IDLE_S": "2",
    "VITRINE_PANEL_REFRESH_S": "1",
    "MERCADOPAGO_ACCESS_TOKEN": "TEST-storefront",
}
MANAGE_GUILD = 1 << 5


@dataclass
class Store:
    bot: Any
    guild: GuildInfo
    tenant: Any
    instance_id: int
    product: Any
    variations: list[Any]
    staff: Buyer
    buyer: Buyer

    @property
    def shop_channel(self) -> str:
        return self.guild.channel("loja")

    @property
    def log_channel(self) -> str:
        return self.guild.channel("vendas")


async def make_store(
    fleet: Fleet,
    dc: DiscordSandbox,
    *,
    stock: dict[str, list[str]],
    prices: dict[str, int] | None = None,
    buyer_locale: str = "pt-BR",
    name: str = "Loja",
) -> Store:
    """A tenant with a bot in a guild (#loja, #vendas, roles Cliente/Equipe), one product
    with the given variations and stock, a staff member and a buyer."""
    from fleet.models import BotInstance
    from shop.models import Account, Product, Tenant, Variation
    from shop.stock import add_stock

    bot = await dc.create_bot(name)
    raw = await dc.call(
        "POST",
        "/_sandbox/guilds",
        json={
            "name": "Servidor",
            "channels": [{"name": "loja"}, {"name": "vendas"}],
            "roles": [{"name": "Cliente"}, {"name": "Equipe", "permissions": MANAGE_GUILD}],
            "bots": [bot.application_id],
        },
    )
    guild = await dc.guild(raw["id"])
    owner = await Account.create(discord_id=uuid.uuid4().hex[:18], username="seller")
    tenant = await Tenant.create(
        owner=owner,
        name=name,
        guild_id=guild.id,
        sales_log_channel_id=guild.channel("vendas"),
        buyer_role_id=guild.role("Cliente"),
    )
    inst = await BotInstance.create(
        tenant=tenant, name=name, token_enc=fleet.vault.encrypt(bot.token)
    )
    product = await Product.create(
        tenant=tenant, name="Netflix", description="Conta premium", max_per_order=5
    )
    variations = []
    for vname, items in stock.items():
        price = (prices or {}).get(vname, 1990)
        variation = await Variation.create(
            tenant=tenant, product=product, name=vname, price_cents=price
        )
        if items:
            await add_stock(
                fleet.vault,
                tenant.id,
                variation.id,
                "\n".join(items),
                "test",
                hash_key=fleet.stock_hash_key,
            )
        variations.append(variation)
    staff = await dc.buyer("equipe", guilds=[])
    await dc.add_member(guild, staff.id, roles=["Equipe"])
    buyer = await dc.buyer("ana", guilds=[guild], locale=buyer_locale)
    return Store(bot, guild, tenant, inst.id, product, variations, staff, buyer)


def payment_services(sandbox: RunningSandbox, redis_url: str, api: str | None = None) -> Any:
    """What the portal's webhook handler uses to apply a payment (sync → paid → enqueue);
    `api` is the Mercado Pago API new charges go to (payments by default)."""
    from shop.payments.gateways import MercadoPagoApis
    from shop.payments.mercadopago import MercadoPagoGateway
    from shop.payments.mp_ids import ORDERS, PAYMENTS
    from shop.payments.orders_gateway import MercadoPagoOrdersGateway
    from shop.payments.service import PaymentServices

    def build(name: str) -> Any:  # the harness always runs the MP stand-in: its base is set
        cls = MercadoPagoOrdersGateway if name == ORDERS else MercadoPagoGateway
        url = "http://127.0.0.1:9/webhooks/mercadopago"
        return cls(cast(str, sandbox.mp_api_base), "TEST-storefront", url)

    gateway = MercadoPagoApis(build, api or PAYMENTS)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    return PaymentServices(gateway, redis, fee_bps=500, hold_days=7)

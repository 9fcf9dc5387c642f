"""Two orchestrator nodes on two "machines" (network namespaces, `ops.netns_harness`), one
PostgreSQL, one private Redis and the sandbox on this machine, stores with stock, buyers with
orders waiting for payment, and the reconciler's loop (with its delivery relay) beside them.
Shared by the partition tests (`tests/multihost/`) and `bench/partition_failover.py`.

`two_hosts()` builds it and tears everything down (processes, namespaces, links, Redis,
relays) whatever happens. The caller brings a migrated PostgreSQL database (tortoise already
connected to it) and the running sandbox with its two clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from fleet.states import DesiredState, InstanceState
from ops.fleet_harness import STOREFRONT_ENV, Fleet, alive, payment_services, split_node_names
from ops.netns_harness import Forwarder, Network
from ops.process_tools import RedisServer
from ops.purchase_load import approve_at_rate, make_orders, make_stores

T = TypeVar("T")
MESSAGE_POST = re.compile(r"^/channels/\d+/messages$")


@dataclass
class World:
    net: Network
    redis: RedisServer
    a: Fleet
    b: Fleet
    sb: Any
    dc: Any
    mpc: Any
    svc: Any
    stores: list[Any]
    orders: list[tuple[int, str, str]]  # (order id, buyer id, bot user id)
    ttl: float  # the nodes' VITRINE_LEASE_TTL_S
    rate: float  # approvals per second of `load()`
    approved: dict[str, float] = field(default_factory=dict)  # buyer id -> when approved

    @property
    def ids(self) -> list[int]:
        return [store[3].id for store in self.stores]

    async def placement(self) -> dict[int, Any]:
        """{instance id: runtime record} (retrying across a Redis restart)."""
        return {iid: await retry(partial(self.a.record, iid)) for iid in self.ids}

    async def on_a(self) -> dict[int, int]:
        """{instance id: worker pid} of the bots node A runs (it must run some, not all)."""
        records = await self.placement()
        on_a = {i: r.pid for i, r in records.items() if r.node == self.a.node}
        assert on_a and len(on_a) < len(records), "placement put bots on both hosts"
        return on_a

    async def b_takes_over(self, ids: Iterable[int], since: float) -> None:
        """Wait until node B runs these bots, and until 3 x ttl have passed since `since`
        (time.time()): how long each fault lasts."""

        async def b_runs_them() -> bool:
            recs = [await self.b.record(i) for i in ids]
            return all(
                r and r.node == self.b.node and r.state == InstanceState.ONLINE for r in recs
            )

        await self.b.wait_for("node B runs A's bots", b_runs_them, timeout=3 * self.ttl + 20)
        await asyncio.sleep(max(0.0, since + 3 * self.ttl - time.time()))

    def load(self) -> asyncio.Task[None]:
        """The stream of purchases: every order approved at `rate`/s, as the webhook does."""
        return asyncio.create_task(
            approve_at_rate(self.mpc, self.svc, self.orders, self.rate, self.approved)
        )


async def retry(call: Callable[[], Awaitable[T]], attempts: int = 20) -> T:
    """An observation through a client whose socket died with Redis: try again."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except Exception:  # noqa: BLE001 - ConnectionError from redis-py until it reconnects
            await asyncio.sleep(0.2)
    return await call()


def _node_urls(net: Network, fwd: dict[str, Forwarder], db_url: str) -> dict[str, str]:
    """What the nodes connect to: everything at the service address, through the relays."""
    parsed = urlparse(db_url)
    user = parsed.netloc.rpartition("@")[0]
    netloc = f"{user}@{fwd['pg'].address}" if user else fwd["pg"].address
    return {
        "DATABASE_URL": parsed._replace(netloc=netloc).geturl(),
        "REDIS_URL": f"redis://{fwd['redis'].address}/0",
        "DISCORD_API_BASE": f"http://{fwd['discord'].address}/api/v10",
        "MERCADOPAGO_API_BASE": f"http://{fwd['mp'].address}",
    }


def _name_node(fleet: Fleet, name: str, host_launcher: list[str]) -> None:
    fleet.rename(name)
    fleet.launcher = host_launcher


async def _both_live(w: World) -> None:
    from fleet import keys

    async def live() -> bool:
        beats = [await w.a.redis.get(keys.orchestrator_heartbeat(n)) for n in (w.a.node, w.b.node)]
        return all(beats)

    await w.a.wait_for("both nodes' heartbeats", live, timeout=30)


@contextlib.asynccontextmanager
async def two_hosts(
    tmp: Path,
    db_url: str,
    sb: Any,
    dc: Any,
    mpc: Any,
    *,
    ttl: float = 3.0,
    bots: int = 4,
    orders_per_bot: int = 5,
    rate: float = 1.5,
) -> AsyncIterator[World]:
    """Both nodes online, each running half of the `bots`; `orders_per_bot` orders per bot
    created (one buyer each), none approved; a lease TTL of `ttl` s."""
    from fleet.models import BotInstance
    from shop.payments.payment_reconciler import run_forever

    net = Network().create()
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis")
    fwd: dict[str, Forwarder] = {}
    fleets: list[Fleet] = []
    stop, reconciler, svc = asyncio.Event(), None, None
    try:
        redis.start()
        hosts = {h.ns_ip: h.source for h in net.hosts.values()}
        pg_port = urlparse(db_url).port or 5432
        # PostgreSQL and Redis see the relay as 127.0.0.1 (pg_hba allows no other address);
        # the sandbox sees each host as its own loopback source
        for name, port, sources in (
            ("pg", pg_port, {}),
            ("redis", redis.port, {}),
            ("discord", sb.discord_port, hosts),
            ("mp", sb.mp_port, hosts),
        ):
            fwd[name] = await Forwarder(net.service_ip, port, sources).start()
        # the gateway URL that GET /gateway/bot hands out must be reachable from the hosts
        sb.discord_state.config.base_url = f"http://{fwd['discord'].address}"
        env = {
            **STOREFRONT_ENV,
            "MERCADOPAGO_API_BASE": sb.mp_api_base,
            "VITRINE_LEASE_TTL_S": str(ttl),
            "VITRINE_ORCH_HEARTBEAT_S": "0.5",
        }
        for sub in ("a", "b"):
            (tmp / sub).mkdir()
        a = Fleet(tmp / "a", db_url, redis.url, sb.discord_api_base, extra_env=env)
        fleets.append(a)
        a.env.update(_node_urls(net, fwd, db_url))
        b = a.peer()
        fleets.append(b)
        svc = payment_services(sb, redis.url)
        stores = await make_stores(a, dc, bots, orders_per_bot + 1)
        ids = [s[3].id for s in stores]
        # both nodes must be live before the bots are wanted, or the first takes them all
        await BotInstance.filter(id__in=ids).update(desired_state=DesiredState.STOPPED)
        orders = await make_orders(svc, dc, stores, orders_per_bot)
        name_a, name_b = split_node_names(net.tag, ids)
        _name_node(a, name_a, net.hosts["a"].launcher)
        _name_node(b, name_b, net.hosts["b"].launcher)
        w = World(net, redis, a, b, sb, dc, mpc, svc, stores, orders, ttl, rate)
        a.start()
        b.start()
        await _both_live(w)
        # an edited row (updated_at) is what every node's change pass sees; the dirty set
        # is taken by whichever node reads it first
        await BotInstance.filter(id__in=ids).update(
            desired_state=DesiredState.RUNNING, updated_at=datetime.now(UTC)
        )
        for iid in ids:
            await a.wait_state(iid, InstanceState.ONLINE, timeout=40)
        await asyncio.sleep(1.0)  # delivery consumers subscribed after READY
        reconciler = asyncio.create_task(run_forever(svc, 30.0, stop))
        yield w
    finally:
        stop.set()
        if reconciler is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reconciler, 10)
        for fleet in fleets:
            with contextlib.suppress(Exception):
                await fleet.cleanup()
        net.close()
        for relay in fwd.values():
            await relay.close()
        if svc is not None:
            await svc.gateway.aclose()
            await svc.redis.aclose()
        redis.stop()


async def delivered_from(w: World, host: str, since: float) -> list[dict[str, Any]]:
    """Message creations the sandbox received from `host` (by its source address) since
    `since` (time.time()): what a fenced-off node sent to Discord."""
    out = []
    for bot, *_ in w.stores:
        for row in await w.dc.requests(bot, "POST"):
            if (
                MESSAGE_POST.match(row["path"])
                and row["t"] >= since
                and w.net.host_of(row.get("peer") or "") == host
            ):
                out.append(row)
    return out


async def wait_gone(pids: list[int], timeout: float) -> list[int]:  # noqa: ASYNC109
    """Wait for processes to end; returns those still alive."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return [p for p in pids if alive(p)]

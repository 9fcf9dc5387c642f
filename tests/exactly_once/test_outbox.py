"""The database is the record of what is owed; Redis only wakes the worker (issue 21, item 2).

Each test runs its own redis-server (AOF on, as the embedded one) so that it can kill it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from core import redis as core_redis
from fleet import keys
from ops.process_tools import free_port, wait_port
from shop import ledger
from shop.models import Order, Payment
from shop.outbox import Relay, relay_once
from shop.payments import sync
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.payment_reconciler import run_forever
from shop.payments.service import PaymentServices, create_pix_payment
from shop.payments.sync import sync_payment
from shop.states import OrderStatus
from tests.shop.conftest import mp  # noqa: F401 - the Mercado Pago stand-in fixture
from tests.shop.helpers import eventually, make_order, make_store


class PrivateRedis:
    """A redis-server with AOF on a fixed port, killed (-9) and restarted at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, timeout=10.0)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def outbox_svc(mp, private_redis, db):  # noqa: F811
    gateway = MercadoPagoGateway(
        mp.url, "TEST-token", mp.notification_url, backoff_base=0.01, max_backoff=0.05
    )
    redis = core_redis.connect(private_redis.url)
    yield PaymentServices(gateway, redis, fee_bps=500, hold_days=7)
    await gateway.aclose()
    await redis.aclose()


async def paid_order_setup(svc):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    return store, order, payment


def wakes(store):
    async def read(redis):
        entries = await redis.xrange(keys.delivery_stream(store["instance"].id))
        return [int(fields["order_id"]) for _, fields in entries]

    return read


async def test_order_paid_while_redis_is_down_is_woken_within_seconds_after_it_returns(
    outbox_svc, mp, private_redis
):  # noqa: F811
    svc = outbox_svc
    store, order, payment = await paid_order_setup(svc)
    stop = asyncio.Event()
    # the reconciler as deployed: default 30 s passes, 60 s delivery grace
    reconciler = asyncio.create_task(run_forever(svc, 30.0, stop))
    try:
        await asyncio.sleep(0.3)
        private_redis.kill()
        await mp.control.approve(int(payment.provider_payment_id))
        result = await sync_payment(svc, str(payment.id), "system:webhook")
        assert "delivery enqueued" not in result.changes
        assert (await Order.get(id=order.id)).status == OrderStatus.PAID
        await asyncio.sleep(4.5)  # longer than the writer's own retries: the relay must do it
        private_redis.start()
        back = time.monotonic()
        await eventually(
            lambda: wakes(store)(svc.redis),
            within=5.0,
            what="the order woken on its delivery stream",
        )
        assert time.monotonic() - back <= 5.0
        assert order.id in await wakes(store)(svc.redis)
    finally:
        stop.set()
        await reconciler


async def test_paid_status_and_the_delivery_it_owes_are_written_together(
    outbox_svc, mp, monkeypatch
):  # noqa: F811
    svc = outbox_svc
    store, order, payment = await paid_order_setup(svc)
    await mp.control.approve(int(payment.provider_payment_id))

    async def ledger_down(*args, **kwargs):
        raise RuntimeError("crash after the status write, before the commit")

    monkeypatch.setattr(ledger, "book_sale", ledger_down)
    with pytest.raises(RuntimeError):
        await sync_payment(svc, str(payment.id), "system:webhook")
    row = await Order.get(id=order.id)
    assert (row.status, row.wake_at) == (OrderStatus.PENDING, None)  # neither, not one
    monkeypatch.undo()

    async def process_dies(*args, **kwargs):
        raise SystemExit("killed between the commit and the wake")

    monkeypatch.setattr(sync, "enqueue_delivery", process_dies)
    with pytest.raises(SystemExit):
        await sync_payment(svc, str(payment.id), "system:webhook")
    row = await Order.get(id=order.id)
    assert row.status == OrderStatus.PAID and row.wake_at is not None  # owed in the database
    assert (await Payment.get(id=payment.id)).status == "approved"
    assert await wakes(store)(svc.redis) == []
    later = datetime.now(UTC) + timedelta(seconds=3)
    assert await relay_once(svc.redis, now=later) == 1
    assert await wakes(store)(svc.redis) == [order.id]
    assert await relay_once(svc.redis, now=later) == 0  # pushed back: no storm of wakes


async def test_relay_wakes_every_owed_delivery_again_after_a_redis_restart(
    outbox_svc, mp, private_redis
):  # noqa: F811
    """A wake Redis acknowledged just before dying may not be on its disk (AOF fsyncs every
    second): after a restart every owed delivery is woken at once, not at its next backoff."""
    svc = outbox_svc
    store, order, payment = await paid_order_setup(svc)
    await mp.control.approve(int(payment.provider_payment_id))
    await sync_payment(svc, str(payment.id), "system:webhook")
    relay = Relay(svc.redis, 0.5)
    assert await relay.tick() == 0.5 and relay.run_id
    private_redis.kill()
    private_redis.start()
    await svc.redis.delete(keys.delivery_stream(store["instance"].id))  # the lost second
    await relay.tick()
    assert await wakes(store)(svc.redis) == [order.id]


@pytest.fixture
async def fleet_on_private_redis(tmp_path, sqlite_db, sandbox, private_redis):
    """The storefront fleet (orchestrator + workers) on this test's own Redis."""
    from ops.fleet_harness import STOREFRONT_ENV, Fleet

    env = dict(STOREFRONT_ENV, MERCADOPAGO_API_BASE=sandbox.mp_api_base)
    fleet = Fleet(tmp_path, sqlite_db, private_redis.url, sandbox.discord_api_base, extra_env=env)
    try:
        yield fleet
    finally:
        await fleet.cleanup()


@pytest.mark.e2e
async def test_worker_survives_a_redis_restart_and_delivers_what_was_paid_during_it(
    fleet_on_private_redis, dc, mpc, sandbox, private_redis
):
    from ops.fleet_harness import make_store as make_discord_store
    from ops.fleet_harness import payment_services
    from tests.storefront.helpers import (
        approve_and_sync,
        buy,
        order_id_of,
        post_panel,
        wait_ready,
        wait_status,
    )

    fleet = fleet_on_private_redis
    store = await make_discord_store(fleet, dc, stock={"1 mês": ["KEY-ONE", "KEY-TWO"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    other = await dc.buyer("bia", guilds=[store.guild])
    during = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    after = order_id_of(await buy(other, panel, store.variations[0].id))
    worker = await fleet.record(store.instance_id)
    svc = payment_services(sandbox, private_redis.url)
    stop = asyncio.Event()
    reconciler = asyncio.create_task(run_forever(svc, 30.0, stop))
    try:
        private_redis.kill()
        await approve_and_sync(mpc, svc, during)  # paid: the wake fails, the order is owed
        await asyncio.sleep(1.0)
        private_redis.start()
        back = time.monotonic()
        await wait_status(during, "delivered", timeout=10)
        assert time.monotonic() - back <= 5.0
        approved = await approve_and_sync(mpc, svc, after)
        await wait_status(after, "delivered", timeout=5)
        assert time.monotonic() - approved <= 3.0
        await asyncio.sleep(1.0)  # time for a duplicate DM to show up
    finally:
        stop.set()
        await reconciler
        await svc.gateway.aclose()
        await svc.redis.aclose()
    keys_sent = []
    for buyer in (store.buyer, other):
        dms = [m for m in await buyer.dms() if m.embeds]
        assert len(dms) == 1, f"{buyer.id} got {len(dms)} delivery DMs"
        keys_sent += [k for k in ("KEY-ONE", "KEY-TWO") if k in dms[0].text()]
    assert sorted(keys_sent) == ["KEY-ONE", "KEY-TWO"]
    with contextlib.suppress(RedisConnectionError):  # its pooled connection died with Redis
        await fleet.redis.ping()
    assert (await fleet.record(store.instance_id)).pid == worker.pid  # the same worker

"""`vitrine status|instances|restart|suspend|resume|orders|retry-waiting-stock|withdrawals`
against a real admin app served by hypercorn on a free port (the CLI runs in a thread)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from ops.cli import main
from ops.process_tools import free_port
from tests.admin.conftest import orchestrator  # noqa: F401 - a fixture
from tests.helpers.admin import (
    TOKEN,
    add_stock,
    admin_settings,
    make_instance,
    make_order,
    make_tenant,
    make_variation,
)
from web.admin import create_app


@pytest.fixture
async def served(tmp_path, db, redis_url, monkeypatch):
    """The admin app on a free port; the CLI's environment points at it."""
    port = free_port()
    settings = admin_settings(tmp_path, db, redis_url, ADMIN_PORT=str(port))
    app = create_app(settings)
    app.config["ADMIN_CONTROL_TIMEOUT"] = 1.0
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    for name, value in {
        "DATABASE_URL": db,
        "REDIS_URL": redis_url,
        "ADMIN_PORT": str(port),
        "ADMIN_API_TOKEN": TOKEN,
        "PORTAL_PORT": "1",
        "TOKEN_ENCRYPTION_KEYS": settings.token_encryption_keys[0],
    }.items():
        monkeypatch.setenv(name, value)
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    yield app
    stop.set()
    await task


@pytest.fixture
def redis(served):
    """What the imported `orchestrator` fixture listens on."""
    return served.config["REDIS"]


async def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_status_is_a_table_and_degraded_without_portal_or_orchestrator(served, capsys):
    code, out, _ = await cli(capsys, "status")
    assert code == 1  # no portal, no orchestrator in this test
    assert out.startswith("status: degraded")
    lines = {
        line.split()[0]: line.split()[1]
        for line in out.splitlines()
        if line.split() and line.split()[0] in ("admin", "portal", "db", "redis")
    }
    assert lines == {"admin": "ok", "portal": "DOWN", "db": "ok", "redis": "ok"}
    assert "orders:" in out and "waiting_stock 0" in out


def test_status_without_admin_reports_db_and_redis_directly(tmp_path, redis_url):
    env = {
        **os.environ,
        "ADMIN_PORT": str(free_port()),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite://{tmp_path / 'x.sqlite3'}",
        "DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vitrine"), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    first, *rest = done.stdout.splitlines()
    assert first.startswith("admin: admin API unreachable at http://127.0.0.1:")
    assert any(line.split()[:2] == ["db", "ok"] for line in rest)
    assert any(line.split()[:2] == ["redis", "ok"] for line in rest)
    assert rest[-1] == "status: degraded"


async def test_instances_filter_by_state_and_actions(served, capsys, orchestrator):  # noqa: F811
    redis = served.config["REDIS"]
    tenant = await make_tenant(name="Loja Azul")
    bad = await make_instance(tenant, name="quebrado")
    await make_instance(tenant, name="parado")
    store = RuntimeStore(redis)
    await store.transition(bad.id, InstanceState.STARTING, pid=123)
    await store.transition(bad.id, InstanceState.ERROR)
    await store.set_last_error(bad.id, "Token do bot inválido", "invalid_token")
    code, out, _ = await cli(capsys, "instances", "--state", "error")
    assert code == 0 and "quebrado" in out and "parado" not in out
    assert "Token do bot inválido" in out and "1 instance(s)" in out

    code, out, _ = await cli(capsys, "restart", str(bad.id))
    assert code == 0 and "restart done" in out
    assert orchestrator.received[-1].action == "restart"

    code, _, err = await cli(capsys, "suspend", str(bad.id))
    assert code == 1 and err.count("\n") == 1 and "needs a reason" in err
    code, out, _ = await cli(capsys, "suspend", str(bad.id), "--reason", "spam")
    assert code == 0 and orchestrator.received[-1].reason == "spam"
    code, out, _ = await cli(capsys, "resume", str(bad.id))
    assert code == 0 and "resume done" in out

    code, _, err = await cli(capsys, "restart", "999999")
    assert code == 1 and err.startswith("error: admin API answered 404")


async def test_action_without_orchestrator_is_one_line_504(served, capsys):
    instance = await make_instance()
    code, _, err = await cli(capsys, "restart", str(instance.id))
    assert code == 1 and err.count("\n") == 1
    assert "no orchestrator answered in time (504)" in err


async def test_orders_waiting_stock_and_retry(served, capsys):
    from shop.models import StockItem

    tenant = await make_tenant()
    bot = await make_instance(tenant)
    variation = await make_variation(tenant, price=1990)
    waiting = await make_order(variation, status="waiting_stock", buyer_name="Maria", instance=bot)
    await make_order(variation, status="pending")
    code, out, _ = await cli(capsys, "orders", "--status", "waiting_stock")
    assert code == 0 and "Maria" in out and "19.90" in out and "1 order(s)" in out

    code, out, _ = await cli(capsys, "retry-waiting-stock", "--tenant", str(tenant.id))
    assert code == 0 and "delivered 0" in out and "still waiting 1" in out
    await add_stock(variation, 1)
    code, out, _ = await cli(
        capsys,
        "retry-waiting-stock",
        "--tenant",
        str(tenant.id),
        "--product",
        str(variation.product_id),
    )
    assert code == 0 and f"delivered 1 (orders: {waiting.id})" in out
    assert "not handed" not in out
    assert await StockItem.filter(order_id=waiting.id, status="sold").count() == 1
    code, out, _ = await cli(capsys, "orders", "--status", "delivered")
    assert out.strip() == "no orders with status delivered"


async def test_withdrawals_pending(served, capsys):
    from shop.models import Withdrawal

    tenant = await make_tenant()
    code, out, _ = await cli(capsys, "withdrawals", "--pending")
    assert code == 0 and out.strip() == "no pending withdrawals"
    await Withdrawal.create(tenant=tenant, amount_cents=5000, pix_key_type="email", pix_key="a@b.c")
    await Withdrawal.create(
        tenant=tenant, amount_cents=700, pix_key_type="email", pix_key="d@e.f", status="completed"
    )
    code, out, _ = await cli(capsys, "withdrawals", "--pending")
    assert code == 0 and "50.00" in out and "7.00" not in out and "1 withdrawal(s)" in out


async def test_wrong_token_is_one_clear_line(served, capsys, monkeypatch):
    monkeypatch.setenv("ADMIN_API_TOKEN", "x" * 40)
    code, _, err = await cli(capsys, "orders")
    assert code == 1 and err == "error: admin API refused the token (401): check ADMIN_API_TOKEN\n"


def test_status_lists_each_orchestrator_node_and_the_nodes_down():
    from ops.opscmds import format_status

    body = {
        "status": "ok",
        "db": {"ok": True},
        "redis": {"ok": True},
        "services": {
            "admin": {"ok": True},
            "portal": {"ok": True},
            "orchestrator": {
                "ok": True,
                "nodes": {"maq-1": 1.2, "maq-2": 0.4},
                "node_status": {
                    "maq-2": {
                        "heartbeat_age_s": 0.4,
                        "workers": 240,
                        "leases": 241,
                        "adopted": 0,
                        "drained": False,
                        "pid": 77,
                    },
                    "maq-1": {
                        "heartbeat_age_s": 1.2,
                        "workers": 260,
                        "leases": 260,
                        "adopted": 260,
                        "drained": False,
                        "pid": 42,
                    },
                },
                "down_nodes": ["maq-3"],
            },
        },
    }
    out = format_status(body)
    rows = [line.split() for line in out.splitlines()]
    assert ["maq-1", "260", "260", "260", "no", "1s", "42"] in rows
    assert ["maq-2", "240", "241", "0", "no", "0s", "77"] in rows
    assert out.splitlines()[-1] == "nodes down:   maq-3"

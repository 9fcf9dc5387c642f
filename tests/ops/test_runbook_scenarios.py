"""The incident runbook (docs/runbook.md, scenarios A–D) walked through against a running demo
(`vitrine demo`: supervisord, real workers, the sandbox), with the runbook's own commands; then
no log file of the run contains a secret."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.demo import DEMO_BOT_TOKEN, DemoConfig, load_demo_settings
from ops.supervisorctl import ctl
from tests.ops.demo_harness import Demo, running_demo

pytestmark = pytest.mark.e2e
WRONG_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDk5.wrong0.this-token-was-revoked-by-discord-000000"  # noqa: S105


def wait_for(what: str, check: Any, timeout: float = 20) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not reached in {timeout}s (last={last!r})")


async def await_for(what: str, check: Any, timeout: float = 20) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not reached in {timeout}s (last={last!r})")


def portal_ok(demo: Demo) -> bool:
    response = httpx.get(demo.state["portal"] + "/health", timeout=2)
    return response.status_code == 200 and response.json()["status"] == "ok"


def scenario_a_portal_down(demo: Demo) -> None:
    ctl(demo.conf, "stop", "portal")
    assert "STOPPED" in ctl(demo.conf, "status", "portal").stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(demo.state["portal"] + "/health", timeout=2)
    ctl(demo.conf, "start", "portal")
    assert "RUNNING" in ctl(demo.conf, "status", "portal").stdout
    wait_for("portal healthy again", lambda: portal_ok(demo), timeout=20)


async def set_token(settings: Any, instance_id: int, token: str) -> None:
    from core.vault import TokenVault
    from fleet.models import BotInstance

    inst = await BotInstance.get(id=instance_id)
    inst.token_enc = TokenVault(settings.token_encryption_keys).encrypt(token)
    inst.config_version += 1
    await inst.save()


async def scenario_b_invalid_token(demo: Demo, settings: Any) -> None:
    iid = demo.state["instance_id"]
    await set_token(settings, iid, WRONG_TOKEN)
    restarted = demo.vitrine("restart", str(iid))
    assert restarted.returncode == 0, restarted.stderr

    def listed_in_error() -> str | None:
        out = demo.vitrine("instances", "--state", "error").stdout
        row = next((line for line in out.splitlines() if line.startswith(f"{iid} ")), None)
        return row if row and "Token inválido" in row else None

    await asyncio.to_thread(wait_for, "instance in error with lastError", listed_in_error, 30)
    await set_token(settings, iid, DEMO_BOT_TOKEN)  # the seller pasted a new token
    restarted = demo.vitrine("restart", str(iid))
    assert restarted.returncode == 0, restarted.stderr

    def online() -> bool:
        out = demo.vitrine("instances", "--state", "online").stdout
        return any(line.startswith(f"{iid} ") for line in out.splitlines())

    await asyncio.to_thread(wait_for, "instance online again", online, 30)


async def order_status(order_id: int) -> str:
    from shop.models import Order

    return str((await Order.get(id=order_id)).status)


async def scenario_c_webhook_lost(
    demo: Demo, dc: Any, mp: Any, store: Any, buyer: Any, admin: httpx.AsyncClient
) -> None:
    from ops.demo_buyer import buy, order_id_of, post_panel
    from shop.models import Payment

    await mp.set_faults(drop=True)
    panel = await post_panel(store, demo.state["product"])
    order_id = order_id_of(await buy(buyer, panel, demo.state["variations"][0]["id"]))
    payment = await Payment.get(order_id=order_id)
    await mp.approve(payment.provider_payment_id)
    await asyncio.sleep(2)
    assert await order_status(order_id) == "pending"
    assert any(w.get("dropped") for w in await mp.webhooks())
    answer = await admin.post(f"/api/payments/{payment.provider_payment_id}/resync")
    assert answer.status_code == 200, answer.text
    await await_for(
        "delivered after resync", lambda: _is(order_status(order_id), "delivered"), timeout=20
    )
    await mp.clear_faults()


async def _is(status: Any, wanted: str) -> bool:
    return await status == wanted


async def scenario_d_no_stock(
    demo: Demo, settings: Any, dc: Any, mp: Any, store: Any, buyer: Any
) -> None:
    from ops.demo_buyer import buy, order_id_of, post_panel
    from shop.models import Payment, StockItem
    from shop.states import StockStatus

    variation_id = demo.state["variations"][1]["id"]
    panel = await post_panel(store, demo.state["product"])
    order_id = order_id_of(await buy(buyer, panel, variation_id))
    # the stock runs out under the order (the seller removed it after the reservation)
    await StockItem.filter(order_id=order_id).update(status=StockStatus.SOLD, order_id=None)
    await StockItem.filter(variation_id=variation_id, status=StockStatus.AVAILABLE).delete()
    payment = await Payment.get(order_id=order_id)
    await mp.approve(payment.provider_payment_id)
    await await_for("waiting_stock", lambda: _is(order_status(order_id), "waiting_stock"))
    listed = demo.vitrine("orders", "--status", "waiting_stock").stdout
    assert any(line.startswith(f"{order_id} ") for line in listed.splitlines()), listed

    from core.vault import TokenVault
    from shop.stock import add_stock

    await add_stock(
        TokenVault(settings.token_encryption_keys),
        demo.state["tenant_id"],
        variation_id,
        "RESTOCK-D-1\n",
        "seller",
        hash_key=settings.stock_hash_key,
    )
    retried = demo.vitrine("retry-waiting-stock")
    assert retried.returncode == 0, retried.stderr
    await await_for("delivered after restock", lambda: _is(order_status(order_id), "delivered"))
    dm = await buyer.wait_dm(lambda m: "RESTOCK-D-1" in m.text(), timeout=15)
    assert f"#{order_id}" in dm.text() or "RESTOCK-D-1" in dm.text()


async def walk_c_and_d(demo: Demo, settings: Any) -> None:
    from core.db import close_db, init_db
    from ops.demo_buyer import _Store
    from sandbox.discord.client import Bot, Buyer, DiscordSandbox
    from sandbox.mercadopago.client import MercadoPagoSandboxClient

    state = demo.state
    token = demo.secrets()["ADMIN_API_TOKEN"].split(",")[0]
    await init_db(settings.database_url)
    try:
        async with (
            DiscordSandbox(state["discord_base"]) as dc,
            MercadoPagoSandboxClient(state["mp_base"]) as mp,
            httpx.AsyncClient(
                base_url=state["admin"], timeout=20, headers={"Authorization": f"Bearer {token}"}
            ) as admin,
        ):
            b = state["bot"]
            store = _Store(
                Bot(b["application_id"], "", b["user_id"], b["name"]),
                await dc.guild(state["guild_id"]),
                Buyer(dc, state["staff"], "pt-BR"),
                state["shop_channel"],
            )
            buyer = Buyer(dc, state["buyer"], "pt-BR")
            await scenario_b_invalid_token(demo, settings)
            await scenario_c_webhook_lost(demo, dc, mp, store, buyer, admin)
            await scenario_d_no_stock(demo, settings, dc, mp, store, buyer)
    finally:
        await close_db()


def test_runbook_scenarios_a_to_d_then_no_secret_in_any_log(tmp_path, redis_url):
    with running_demo(tmp_path, redis_url) as demo:
        demo.wait_line("demo ready", timeout=50)
        settings = load_demo_settings(DemoConfig(dir=demo.dir, redis_url=redis_url))
        scenario_a_portal_down(demo)
        asyncio.run(walk_c_and_d(demo, settings))
        secrets = demo.every_secret()
    assert demo.proc.returncode == 0, demo.output[-2000:]

    secrets["wrong bot token"] = WRONG_TOKEN
    files = [p for p in Path(demo.dir / "logs").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {
        "portal.log",
        "admin.log",
        "orchestrator.log",
        "audit.jsonl",
        "portal.out.log",
    } <= names, names
    assert any(p.parent.name == "instances" for p in files)
    leaks = [
        (p.name, what)
        for p in files
        for what, value in secrets.items()
        if value and value in p.read_text(errors="replace")
    ]
    assert leaks == []

"""A delivery message is created once: Discord's `enforce_nonce` as the sandbox models it, a
create that reached Discord survives its client dying, and a worker SIGKILLed right after the
DM was created (before it recorded it) does not DM the buyer twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from fleet.states import InstanceState
from ops.fleet_harness import make_store
from sandbox.discord.client import DiscordSandbox
from shop import delivery
from shop.models import Order
from tests.storefront import conftest as storefront
from tests.storefront.helpers import (
    approve_and_sync,
    buy,
    order_id_of,
    post_panel,
    wait_ready,
    wait_status,
)

fleet_env = storefront.fleet_env  # the storefront's worker settings (re-claim after 2 s)
svc = storefront.svc


async def _world(dc: DiscordSandbox) -> tuple[Any, Any, dict[str, Any]]:
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("S", channels=["loja"], bots=[bot])
    other = await dc.create_bot("Outra")
    await dc.add_bot_to_guild(guild, other)
    return bot, other, {"guild": guild}


async def _post(
    base: str, token: str, channel_id: str, payload: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/channels/{channel_id}/messages",
            json=payload,
            headers={"Authorization": f"Bot {token}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_enforce_nonce_returns_first_message_and_creates_nothing(sandbox, dc):
    bot, other, world = await _world(dc)
    channel = world["guild"].channel("loja")
    api = sandbox.discord_api_base
    first = {"content": "pedido", "nonce": "v1-o7-abc", "enforce_nonce": True}
    status, one = await _post(api, bot.token, channel, first)
    assert status == 200 and one["nonce"] == "v1-o7-abc"
    status, again = await _post(api, bot.token, channel, dict(first, content="outra vez"))
    assert status == 200 and again["id"] == one["id"] and again["content"] == "pedido"
    assert [m["id"] for m in await dc.channel_messages(channel)] == [one["id"]]
    # another author, or no enforce_nonce: a new message each time
    _, by_other = await _post(api, other.token, channel, first)
    _, unenforced = await _post(api, bot.token, channel, {"content": "x", "nonce": "v1-o7-abc"})
    _, int_nonce = await _post(
        api, bot.token, channel, {"content": "y", "nonce": 123, "enforce_nonce": True}
    )
    ids = [m["id"] for m in await dc.channel_messages(channel)]
    assert ids == [one["id"], by_other["id"], unenforced["id"], int_nonce["id"]]
    assert len(set(ids)) == 4
    # a nonce longer than 25 characters: 400 Invalid Form Body, nothing created
    status, error = await _post(
        api, bot.token, channel, {"content": "z", "nonce": "n" * 26, "enforce_nonce": True}
    )
    assert status == 400 and error["code"] == 50035 and "nonce" in error["errors"]
    assert len(await dc.channel_messages(channel)) == 4
    # past the window the nonce is forgotten: a new message
    await dc.configure(nonce_window_s=0.2)
    await asyncio.sleep(0.3)
    _, late = await _post(api, bot.token, channel, first)
    assert late["id"] != one["id"] and len(await dc.channel_messages(channel)) == 5


async def test_enforce_nonce_in_payload_json_of_a_multipart_create(sandbox, dc):
    bot, _, world = await _world(dc)
    channel = world["guild"].channel("loja")
    payload = {
        "content": "arquivo",
        "nonce": "v1-o8-f",
        "enforce_nonce": True,
        "attachments": [{"id": 0, "filename": "pedido-8.txt"}],
    }
    ids = []
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(payload))
            form.add_field("files[0]", b"KEY-1\n", filename="pedido-8.txt")
            async with http.post(
                f"{sandbox.discord_api_base}/channels/{channel}/messages",
                data=form,
                headers={"Authorization": f"Bot {bot.token}"},
            ) as r:
                assert r.status == 200
                ids.append((await r.json())["id"])
    msgs = await dc.channel_messages(channel)
    assert ids[0] == ids[1] and len(msgs) == 1
    assert msgs[0]["attachments"][0]["filename"] == "pedido-8.txt"


async def test_create_received_in_full_takes_effect_when_client_hangs_up(sandbox, dc):
    bot, _, world = await _world(dc)
    channel = world["guild"].channel("loja")
    # Discord still busy with the request when the client dies
    await dc.add_fault_rule(
        bot, "delay", method="POST", path=f"/channels/{channel}/messages", delay_ms=300
    )
    body = json.dumps({"content": "entregue", "nonce": "v1-o9", "enforce_nonce": True}).encode()
    raw = (
        f"POST /api/v10/channels/{channel}/messages HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bot {bot.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    _, writer = await asyncio.open_connection("127.0.0.1", sandbox.discord_port)
    writer.write(raw)
    await writer.drain()
    await asyncio.sleep(0.1)  # Discord has the request and is working on it…
    writer.transport.abort()  # …when the client dies without reading the answer
    msgs = await dc.poll(
        lambda: dc.channel_messages(channel), lambda m: m or None, timeout=3, what="the message"
    )
    assert [m["content"] for m in msgs] == ["entregue"]


async def test_hold_fault_applies_the_create_and_never_answers(sandbox, dc):
    bot, _, world = await _world(dc)
    channel = world["guild"].channel("loja")
    await dc.add_fault_rule(bot, "hold", method="POST", path=f"/channels/{channel}/messages")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await _post(sandbox.discord_api_base, bot.token, channel, {"content": "segurado"})
    assert [m["content"] for m in await dc.channel_messages(channel)] == ["segurado"]


# ---- the domain's record of a send (SQLite and PostgreSQL) ---------------------------------
async def test_resend_plan_counts_the_window_from_the_first_attempt_in_a_channel(db):
    from shop.models import Account, Product, Tenant, Variation

    owner = await Account.create(discord_id="1", username="s")
    tenant = await Tenant.create(owner=owner, name="L")
    product = await Product.create(tenant=tenant, name="P")
    variation = await Variation.create(tenant=tenant, product=product, name="v", price_cents=1)
    order = await Order.create(
        tenant=tenant,
        product=product,
        variation=variation,
        interaction_id="i1",
        buyer_discord_id="2",
        quantity=1,
        unit_price_cents=1,
        total_cents=1,
    )
    nonce = delivery.delivery_nonce(order.id, [3, 1, 2])
    assert nonce == delivery.delivery_nonce(order.id, [1, 2, 3]) and len(nonce) <= 25
    assert nonce != delivery.delivery_nonce(order.id, [1, 2, 4])
    assert delivery.resend_plan(order, nonce, "50", 60) == delivery.Resend.SEND
    await delivery.record_send_attempt(order.id, nonce, "50")
    first = (await Order.get(id=order.id)).delivery_attempted_at
    await delivery.record_send_attempt(order.id, nonce, "50")  # a re-run: the first time stays
    order = await Order.get(id=order.id)
    assert order.delivery_attempted_at == first and order.delivery_message_id is None
    assert delivery.resend_plan(order, nonce, "50", 60) == delivery.Resend.NONCE
    assert (
        delivery.resend_plan(order, nonce, "50", 60, now=first + timedelta(seconds=61))
        == delivery.Resend.CHECK
    )
    assert delivery.resend_plan(order, nonce, "51", 60) == delivery.Resend.SEND
    await delivery.record_sent(order.id, "50", "999")
    order = await Order.get(id=order.id)
    assert delivery.resend_plan(order, nonce, "50", 60) == delivery.Resend.KNOWN


# ---- end to end: a real worker killed at the worst moment -----------------------------------
async def _paid_order_with_dm_held(fleet, dc, mpc, svc, sandbox, store) -> tuple[int, str]:
    """Buy, hold the answer to the DM's create, approve; returns (order id, DM channel id)
    once the DM exists at Discord (the worker is still waiting for the answer)."""
    panel = await post_panel(store)
    order_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    dm = sandbox.discord_state.dm_channel(store.bot.user_id, store.buyer.id)
    await dc.add_fault_rule(store.bot, "hold", method="POST", path=f"/channels/{dm.id}/messages")
    await approve_and_sync(mpc, svc, order_id)
    await store.buyer.wait_dm(lambda m: m.embeds, timeout=10)
    return order_id, dm.id


async def _kill_worker(fleet, store) -> None:
    first = await fleet.record(store.instance_id)
    os.kill(first.pid, signal.SIGKILL)
    await fleet.wait_state(
        store.instance_id, InstanceState.ONLINE, new_pid_than=first.pid, timeout=15
    )


@pytest.mark.e2e
async def test_worker_killed_after_dm_created_before_recorded_dms_buyer_once(
    fleet, dc, mpc, svc, sandbox
):
    store = await make_store(fleet, dc, stock={"1 mês": ["ONLY-KEY", "OTHER-KEY"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    order_id, dm_id = await _paid_order_with_dm_held(fleet, dc, mpc, svc, sandbox, store)
    assert (await Order.get(id=order_id)).status == "paid"  # the DM exists, not recorded
    await _kill_worker(fleet, store)
    order = await wait_status(order_id, "delivered", timeout=20)
    await asyncio.sleep(1)  # time for a duplicate to show up
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 1 and "ONLY-KEY" in dms[0].text()
    assert order.delivery_path == "dm" and order.delivery_message_id == dms[0]["id"]
    assert order.delivery_channel_id == dm_id


@pytest.mark.e2e
async def test_beyond_nonce_window_rerun_finds_the_dm_or_sends_it_once(
    fleet, dc, mpc, svc, sandbox
):
    fleet.env["VITRINE_DELIVERY_NONCE_WINDOW_S"] = "0.5"
    await dc.configure(nonce_window_s=0.5)  # Discord forgot the nonce too
    store = await make_store(fleet, dc, stock={"1 mês": ["KEY-A", "KEY-B"]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    # 1. the DM exists, the worker died before recording it: found, not sent again
    found_id, _ = await _paid_order_with_dm_held(fleet, dc, mpc, svc, sandbox, store)
    await _kill_worker(fleet, store)
    order = await wait_status(found_id, "delivered", timeout=20)
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 1 and order.delivery_message_id == dms[0]["id"]
    # 2. the create never reached Discord (5xx), the worker died: sent once after the restart
    panel = await post_panel(store)
    lost_id = order_id_of(await buy(store.buyer, panel, store.variations[0].id))
    await dc.add_fault_rule(
        store.bot, "error", method="POST", path="/channels/*/messages", status=502, count=100
    )
    await approve_and_sync(mpc, svc, lost_id)

    async def attempted() -> bool:
        return (await Order.get(id=lost_id)).delivery_attempted_at is not None

    await fleet.wait_for("send attempted", attempted, timeout=10)
    await _kill_worker(fleet, store)
    await dc.clear_faults(store.bot)
    order = await wait_status(lost_id, "delivered", timeout=20)
    await asyncio.sleep(1)
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 2 and f"#{lost_id}" in dms[1].text()
    assert datetime.now(UTC) - order.delivery_attempted_at > timedelta(seconds=0.5)

"""Accounts (block/unblock), orders (filters, retry waiting_stock)."""

from __future__ import annotations

import json
from datetime import timedelta

from fleet import keys
from tests.helpers.admin import (
    AUTH,
    add_stock,
    make_account,
    make_instance,
    make_order,
    make_tenant,
    make_variation,
)


async def test_blocking_revokes_sessions_marks_bots_dirty_and_is_audited(app, client, redis):
    from core.models import AuditLog
    from shop.models import Account, WebSession

    owner = await make_account()
    bystander = await make_account()
    shop = await make_tenant(owner)
    bots = [await make_instance(shop), await make_instance(shop)]
    await make_instance(await make_tenant(bystander))
    await WebSession.create(id="s1", account=owner)
    await WebSession.create(id="s2", account=bystander)
    response = await client.post(
        f"/api/accounts/{owner.id}/block", headers=AUTH, json={"reason": "fraude"}
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["blocked"] and body["blocked_reason"] == "fraude"
    assert body["sessions_revoked"] == 1
    assert sorted(body["instances_marked"]) == sorted(b.id for b in bots)
    assert await redis.smembers(keys.INSTANCES_DIRTY) == {str(b.id) for b in bots}
    assert (await WebSession.get(id="s1")).revoked_at is not None
    assert (await WebSession.get(id="s2")).revoked_at is None
    entry = await AuditLog.get(action="account.blocked")
    assert entry.before == {"blocked": False, "blocked_reason": None}
    assert entry.after["reason"] == "fraude" and entry.actor.startswith("admin:token:")
    lines = (app.config["VITRINE_SETTINGS"].log_dir / "audit.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["action"] == "account.blocked"

    listed = await (await client.get("/api/accounts/blocked", headers=AUTH)).get_json()
    assert [a["id"] for a in listed["items"]] == [owner.id]
    await redis.delete(keys.INSTANCES_DIRTY)
    response = await client.post(
        f"/api/accounts/{owner.id}/unblock", headers=AUTH, json={"reason": "recurso aceito"}
    )
    assert response.status_code == 200
    assert not (await Account.get(id=owner.id)).blocked
    assert await redis.smembers(keys.INSTANCES_DIRTY) == {str(b.id) for b in bots}
    listed = await (await client.get("/api/accounts?blocked=true", headers=AUTH)).get_json()
    assert listed["items"] == []


async def test_block_unknown_account_is_404(client):
    response = await client.post("/api/accounts/4242/block", headers=AUTH, json={"reason": "x"})
    assert response.status_code == 404


async def test_orders_list_filters(client):
    shop = await make_tenant()
    var = await make_variation(shop)
    waiting = await make_order(var, status="waiting_stock", paid_ago=timedelta(hours=2))
    await make_order(var)
    await make_order(await make_variation(await make_tenant()), status="waiting_stock")
    body = await (
        await client.get(f"/api/orders?status=waiting_stock&tenant_id={shop.id}", headers=AUTH)
    ).get_json()
    assert [o["id"] for o in body["items"]] == [waiting.id]
    body = await (await client.get(f"/api/orders/{waiting.id}", headers=AUTH)).get_json()
    assert body["status"] == "waiting_stock"


async def test_retry_waiting_stock_fills_oldest_first_and_enqueues(client, redis):
    from shop.models import StockItem

    shop = await make_tenant()
    bot = await make_instance(shop)
    var = await make_variation(shop)
    old = await make_order(var, status="waiting_stock", instance=bot, paid_ago=timedelta(hours=3))
    big = await make_order(
        var, status="waiting_stock", instance=bot, quantity=5, paid_ago=timedelta(hours=2)
    )
    young = await make_order(var, status="waiting_stock", instance=bot, paid_ago=timedelta(hours=1))
    await add_stock(var, 2)
    response = await client.post(
        "/api/orders/retry-waiting-stock", headers=AUTH, json={"tenant_id": shop.id}
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["delivered"] == 2 and body["still_waiting"] == 1
    assert body["order_ids"] == [old.id, young.id]
    assert await StockItem.filter(order_id=big.id).count() == 0
    assert await StockItem.filter(order_id=old.id, status="sold").count() == 1
    entries = await redis.xrange(keys.delivery_stream(bot.id))
    assert [e[1]["order_id"] for e in entries] == [str(old.id), str(young.id)]
    # nothing left: a second run fills nothing new and allocates no item twice
    await add_stock(var, 0)
    again = await (
        await client.post(
            "/api/orders/retry-waiting-stock", headers=AUTH, json={"product_id": var.product_id}
        )
    ).get_json()
    assert again["still_waiting"] >= 1
    assert await StockItem.filter(status="sold").count() == 2


async def test_retry_without_body_retries_everything(client):
    response = await client.post("/api/orders/retry-waiting-stock", headers=AUTH)
    assert response.status_code == 200
    assert (await response.get_json())["delivered"] == 0

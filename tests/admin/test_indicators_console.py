"""Indicators (JSON, /metrics), status, and the HTML console (session login, CSRF, buttons)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from tests.helpers.admin import AUTH, TOKEN, make_instance, make_order, make_tenant, make_variation


async def _seed_figures(redis):
    from shop.models import WebhookEvent, Withdrawal

    shop = await make_tenant()
    var = await make_variation(shop)
    online, broken, _idle = (
        await make_instance(shop),
        await make_instance(shop),
        await make_instance(shop),
    )
    store = RuntimeStore(redis)
    await store.transition(online.id, InstanceState.STARTING)
    await store.transition(online.id, InstanceState.ONLINE)
    await store.transition(broken.id, InstanceState.CRASHLOOP)
    for path in ("dm", "dm", "channel", "failed"):
        await make_order(var, status="delivered", paid_ago=timedelta(minutes=5), delivery_path=path)
    await make_order(var, status="waiting_stock", paid_ago=timedelta(minutes=5))
    await make_order(var)
    for outcome in ("processed", "processed", "duplicate", "invalid_signature"):
        await WebhookEvent.create(outcome=outcome)
    now = datetime.now(UTC)
    await Withdrawal.create(
        tenant=shop,
        amount_cents=100,
        pix_key_type="email",
        pix_key="a@b.c",
        status="completed",
        requested_at=now - timedelta(hours=2),
        completed_at=now,
    )
    w = await Withdrawal.get(tenant=shop)
    await Withdrawal.filter(id=w.id).update(requested_at=now - timedelta(hours=2))


async def test_indicators_per_period(client, redis):
    await _seed_figures(redis)
    body = await (await client.get("/api/indicators?period=24h", headers=AUTH)).get_json()
    assert body["instances"]["online_total"] == 1 and body["instances"]["error_total"] == 1
    assert body["orders"]["pending"] == 1 and body["orders"]["waiting_stock"] == 1
    assert body["deliveries"]["dm"] == 2 and body["deliveries"]["dm_rate"] == 0.5
    assert body["deliveries"]["failed_rate"] == 0.25
    assert body["webhooks"]["success_rate"] == 0.75
    assert 7100 < body["withdrawals"]["mean_seconds_requested_to_completed"] < 7300
    bad = await client.get("/api/indicators?period=1y", headers=AUTH)
    assert bad.status_code == 400 and (await bad.get_json())["fields"][0]["field"] == "period"


async def test_metrics_in_prometheus_format(client, redis):
    await _seed_figures(redis)
    response = await client.get("/metrics", headers=AUTH)
    text = await response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert 'vitrine_instances{state="online"} 1.0' in text
    assert 'vitrine_orders_open{status="waiting_stock"} 1.0' in text
    assert "vitrine_webhook_success_ratio 0.75" in text
    assert 'vitrine_deliveries_24h{path="dm"} 2.0' in text
    assert 'vitrine_dependency_up{dependency="db"} 1.0' in text
    assert "process_resident_memory_bytes" in text and "python_info" in text


async def test_status_counts_and_attention(client, redis):
    await _seed_figures(redis)
    body = await (await client.get("/api/status", headers=AUTH)).get_json()
    assert body["status"] == "degraded"  # no portal, no orchestrator in this test
    assert body["instances"]["online"] == 1 and body["instances"]["crashloop"] == 1
    assert body["orders"] == {"pending": 1, "waiting_stock": 1, "awaiting_fulfilment": 0}
    assert body["webhooks"]["success_rate_24h"] == 0.75


async def _login(client) -> str:
    response = await client.post("/console/login", form={"token": TOKEN})
    assert response.status_code == 302
    page = await client.get("/")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def test_console_login_keeps_the_token_in_a_session(client, redis):
    await _seed_figures(redis)
    wrong = await client.post("/console/login", form={"token": "nope" * 5})
    assert wrong.status_code == 401
    await _login(client)
    html = await (await client.get("/")).get_data(as_text=True)
    assert "Fila de solicitações" in html and "<svg" in html  # pt-BR by default, charts
    assert (await client.get("/console/instances")).status_code == 200
    assert (await client.get("/api/status")).status_code == 401  # the API stays bearer-only
    await client.get("/console/lang/en")
    assert "Request queue" in await (await client.get("/")).get_data(as_text=True)


async def test_console_buttons_need_the_csrf_token(client, orchestrator):
    from core.models import AuditLog

    inst = await make_instance()
    csrf = await _login(client)
    url = f"/console/instances/{inst.id}/suspend"
    refused = await client.post(url, form={"reason": "spam"})
    assert refused.status_code == 403
    done = await client.post(url, form={"reason": "spam", "csrf": csrf})
    assert done.status_code == 302
    assert orchestrator.received[-1].action == "suspend"
    assert (await AuditLog.get(action="instance.suspend")).after["reason"] == "spam"
    html = await (await client.get("/console/instances")).get_data(as_text=True)
    assert "suspend" in html and f"#{inst.id}" in html  # the flash message


async def test_logout_ends_the_console_session(client):
    csrf = await _login(client)
    await client.post("/console/logout", form={"csrf": csrf})
    assert (await client.get("/")).status_code == 401


async def test_console_dashboard_shows_every_kind_of_queue_item(client):
    from tests.admin.test_monitor_alerts import _seed_queue

    await _seed_queue()
    await _login(client)
    html = await (await client.get("/")).get_data(as_text=True)
    assert "aguardando estoque do produto" in html and "pedido de desbloqueio" in html
    assert "saque de R$ 50,00" in html and "crash loop" in html


async def test_console_forms_from_another_origin_are_refused(client):
    evil = {"Origin": "https://evil.example"}
    response = await client.post("/console/login", form={"token": TOKEN}, headers=evil)
    assert response.status_code == 403
    assert (await client.get("/")).status_code == 401  # no session was opened
    ok = await client.post(
        "/console/login", form={"token": TOKEN}, headers={"Origin": "http://localhost"}
    )
    assert ok.status_code == 302


async def test_sales_per_brasilia_day_in_the_api_and_on_the_console(client, redis):
    from shop.indicators import BRT

    shop = await make_tenant()
    var = await make_variation(shop)  # price 1000 unless the helper says otherwise
    now = datetime.now(BRT)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    moments = {
        "today": midnight + timedelta(minutes=1),
        "yesterday_late": midnight - timedelta(minutes=1),  # already "today" in UTC
        "six_days_ago": midnight - timedelta(days=6) + timedelta(hours=12),
        "too_old": midnight - timedelta(days=20),
    }
    await make_order(var, status="delivered", paid_at=moments["today"], delivery_path="dm")
    await make_order(var, status="paid", paid_at=moments["today"], delivery_path="failed")
    await make_order(var, status="delivered", paid_at=moments["yesterday_late"])
    await make_order(var, status="waiting_stock", paid_at=moments["six_days_ago"])
    await make_order(var, status="delivered", paid_at=moments["too_old"])
    await make_order(var, status="refunded", paid_at=moments["today"])  # not a sale
    await make_order(var)  # pending: not paid

    body = await (await client.get("/api/indicators/daily?days=7", headers=AUTH)).get_json()
    assert body["timezone"] == "America/Sao_Paulo" and len(body["days"]) == 7
    by_day = {d["day"]: d for d in body["days"]}
    price = var.price_cents
    assert by_day[midnight.date().isoformat()] == {
        "day": midnight.date().isoformat(),
        "paid": 2,
        "revenue_cents": 2 * price,
        "failed": 1,
    }
    yesterday = (midnight - timedelta(days=1)).date().isoformat()
    assert by_day[yesterday]["paid"] == 1 and by_day[yesterday]["failed"] == 0
    first = body["days"][0]
    assert first["day"] == (midnight - timedelta(days=6)).date().isoformat()
    assert first["paid"] == 1 and first["revenue_cents"] == price
    assert sum(d["paid"] for d in body["days"]) == 4
    for bad in ("0", "91", "x"):
        response = await client.get(f"/api/indicators/daily?days={bad}", headers=AUTH)
        assert response.status_code == 400, bad
    assert (await client.get("/api/indicators/daily")).status_code == 401

    await _login(client)
    html = await (await client.get("/")).get_data(as_text=True)
    assert "Vendas por dia (últimos 14 dias)" in html
    daily = html.split('class="chart daily"', 1)[1].split("</figure>", 1)[0]
    assert daily.count("<rect") == 14
    label = f"{midnight:%d/%m}"
    assert f"{label}: 2 pedido(s)" in daily and "1 sem entrega automática" in daily

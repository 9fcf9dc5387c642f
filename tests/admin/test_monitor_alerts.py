"""Work queue, tenants' requests, alerts, audit log, transactions (JSON + CSV)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from tests.helpers.admin import (
    AUTH,
    make_account,
    make_instance,
    make_order,
    make_tenant,
    make_variation,
)


async def _seed_queue():
    from fleet.models import Alert, AlertKind
    from shop.models import AdminRequest, AdminRequestKind, Withdrawal

    shop = await make_tenant()
    bot = await make_instance(shop)
    var = await make_variation(shop)
    req = await AdminRequest.create(
        kind=AdminRequestKind.UNBLOCK_APPEAL, tenant=shop, subject="Desbloqueio", body="por favor"
    )
    wd = await Withdrawal.create(
        tenant=shop, amount_cents=5000, pix_key_type="email", pix_key="a@b.c"
    )
    await make_order(var, status="waiting_stock", paid_ago=timedelta(hours=2))
    await make_order(var, status="waiting_stock", paid_ago=timedelta(minutes=5))  # too young
    alert = await Alert.create(
        kind=AlertKind.CRASHLOOP, instance=bot, tenant=shop, message="crash loop"
    )
    await Alert.create(kind=AlertKind.LOW_STOCK, tenant=shop, message="not for the queue")
    return shop, bot, var, req, wd, alert


async def test_work_queue_lists_what_needs_a_person_oldest_first(client):
    shop, bot, var, req, wd, alert = await _seed_queue()
    body = await (await client.get("/api/monitor/requests", headers=AUTH)).get_json()
    assert body["counts"] == {"request": 1, "withdrawal": 1, "waiting_stock": 1, "alert": 1}
    items = body["items"]
    assert items[0]["type"] == "waiting_stock"  # paid two hours ago: the oldest
    assert items[0]["detail"]["orders"] == 1
    assert [i["since"] for i in items] == sorted(i["since"] for i in items)
    by_type = {i["type"]: i for i in items}
    assert {
        "rel": "resolve",
        "method": "POST",
        "href": f"/api/requests/{req.id}/resolve",
        "body": {"note": "..."},
    } in by_type["request"]["links"]
    assert any(
        link["href"] == f"/api/withdrawals/{wd.id}/approve"
        for link in by_type["withdrawal"]["links"]
    )
    assert any(
        link["href"] == f"/api/instances/{bot.id}/restart" for link in by_type["alert"]["links"]
    )
    only = await (await client.get("/api/monitor/requests?type=alert", headers=AUTH)).get_json()
    assert [i["id"] for i in only["items"]] == [str(alert.id)]


async def test_resolving_a_request_with_a_note_takes_it_off_the_queue(client):
    from core.models import AuditLog

    *_rest, req, _wd, _alert = await _seed_queue()
    response = await client.post(
        f"/api/requests/{req.id}/resolve", headers=AUTH, json={"note": "desbloqueado"}
    )
    body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "resolved" and body["resolution_note"] == "desbloqueado"
    queue = await (await client.get("/api/monitor/requests", headers=AUTH)).get_json()
    assert queue["counts"]["request"] == 0
    assert (await AuditLog.get(action="request.resolved")).after["note"] == "desbloqueado"
    listed = await (await client.get("/api/requests?status=resolved", headers=AUTH)).get_json()
    assert [r["id"] for r in listed["items"]] == [req.id]


async def test_acknowledge_changes_the_alert_and_is_audited(client):
    from core.models import AuditLog
    from fleet.models import Alert

    *_rest, alert = await _seed_queue()
    response = await client.post(
        f"/api/alerts/{alert.id}/acknowledge", headers=AUTH, json={"note": "olhando"}
    )
    body = await response.get_json()
    assert response.status_code == 200
    assert body["acknowledged_at"] and body["acknowledged_by"].startswith("admin:token:")
    assert (await Alert.get(id=alert.id)).acknowledged_at is not None
    open_alerts = await (
        await client.get("/api/alerts?acknowledged=false", headers=AUTH)
    ).get_json()
    assert alert.id not in [a["id"] for a in open_alerts["items"]]
    audit = await (await client.get("/api/audit?action=alert.", headers=AUTH)).get_json()
    assert audit["items"][0]["after"]["note"] == "olhando"
    assert (await AuditLog.filter(action="alert.acknowledged").count()) == 1


async def test_transactions_csv_has_the_right_rows(client):
    from shop import ledger
    from shop.models import Withdrawal

    shop, other = await make_tenant(), await make_tenant()
    await ledger.post(
        "test:1",
        "sale",
        [
            ledger.Leg("platform:clearing", -1000),
            ledger.Leg(ledger.seller_account(shop.id), 950, shop.id),
            ledger.Leg("platform:fees", 50),
        ],
    )
    await ledger.post(
        "test:2",
        "sale",
        [
            ledger.Leg("platform:clearing", -300),
            ledger.Leg(ledger.seller_account(other.id), 300, other.id),
        ],
    )
    await Withdrawal.create(
        tenant=shop, amount_cents=700, pix_key_type="email", pix_key="=cmd@evil"
    )
    response = await client.get(f"/api/transactions/ledger.csv?tenant_id={shop.id}", headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
    assert [(r["account"], r["amount_cents"]) for r in rows] == [(f"seller:{shop.id}", "950")]
    everything = await (
        await client.get("/api/transactions/ledger?kind=sale", headers=AUTH)
    ).get_json()
    assert everything["page"]["total"] == 5
    withdrawals = await client.get("/api/transactions/withdrawals.csv", headers=AUTH)
    rows = list(csv.DictReader(io.StringIO(await withdrawals.get_data(as_text=True))))
    assert len(rows) == 1 and rows[0]["amount_cents"] == "700" and "pix_key" not in rows[0]
    payments = await (await client.get("/api/transactions/payments", headers=AUTH)).get_json()
    assert payments["items"] == [] and "provider_payment_id" in payments["columns"]


async def test_accounts_search(client):
    acc = await make_account(username="operador_x")
    body = await (await client.get("/api/accounts?q=operador", headers=AUTH)).get_json()
    assert [a["id"] for a in body["items"]] == [acc.id]

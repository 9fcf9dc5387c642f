"""Admin payments and withdrawals API (Quart test client; Mercado Pago stand-in on loopback)."""

import uuid
from types import SimpleNamespace

import pytest

from core.models import AuditLog
from sandbox.mercadopago.testing import mp_harness
from shop import ledger
from shop.payments.mercadopago import MercadoPagoGateway
from shop.payments.service import PaymentServices, create_pix_payment
from shop.withdrawals import request_withdrawal
from tests.shop.helpers import ADMIN_TOKEN, MP_FAST, make_order, make_settings, make_store
from web.admin import create_app
from web.admin.auth import token_label

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTOR = f"admin:{token_label(ADMIN_TOKEN)}"


@pytest.fixture
async def admin(db, redis_url, tmp_path):
    async with mp_harness(MP_FAST) as mp:
        await mp.control.set_faults(drop=True)  # nobody listens for webhooks here
        settings = make_settings(tmp_path, db, redis_url, mp_url=mp.url)
        app = create_app(settings)
        gateway = MercadoPagoGateway.from_settings(settings)
        async with app.test_app():
            try:
                yield SimpleNamespace(
                    client=app.test_client(),
                    mp=mp,
                    svc=PaymentServices.from_settings(settings, gateway, None),
                )
            finally:
                await gateway.aclose()


async def test_resync_applies_the_provider_state_then_reports_no_change(admin):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(admin.svc, order.id, "buyer:555")
    await admin.mp.control.approve(int(payment.provider_payment_id))
    first = await admin.client.post(f"/api/payments/{payment.id}/resync", headers=AUTH)
    body = await first.get_json()
    assert first.status_code == 200 and body["message"] == "changed"
    assert f"order {order.id} pending → paid" in body["changes"]
    second = await admin.client.post(
        f"/api/payments/{payment.provider_payment_id}/resync", headers=AUTH
    )
    body = await second.get_json()
    assert body["message"] == "no change" and body["changes"] == ["no change"]
    audit = await AuditLog.filter(action="order.paid").values_list("actor", flat=True)
    assert audit == [ACTOR]
    detail = await (await admin.client.get(f"/api/payments/{payment.id}", headers=AUTH)).get_json()
    assert detail["status"] == "approved" and len(detail["ledger"]) == 3
    listing = await (
        await admin.client.get("/api/payments?status=approved", headers=AUTH)
    ).get_json()
    assert [p["id"] for p in listing["payments"]] == [str(payment.id)]


async def test_payment_detail_lists_partial_refunds_in_its_ledger(admin):
    store = await make_store()
    order = await make_order(store)
    payment = await create_pix_payment(admin.svc, order.id, "buyer:555")
    await admin.mp.control.approve(int(payment.provider_payment_id))
    await admin.client.post(f"/api/payments/{payment.id}/resync", headers=AUTH)
    await admin.svc.gateway.refund(
        payment.provider_payment_id, f"part-{payment.id}", amount_cents=500
    )
    body = await (
        await admin.client.post(f"/api/payments/{payment.id}/resync", headers=AUTH)
    ).get_json()
    assert body["message"] == "changed", body
    detail = await (await admin.client.get(f"/api/payments/{payment.id}", headers=AUTH)).get_json()
    kinds = [e["kind"] for e in detail["ledger"]]
    assert kinds.count("sale") == 3 and kinds.count("refund") == 3, detail["ledger"]
    assert (
        sum(e["amount_cents"] for e in detail["ledger"] if e["account"] == "platform:clearing")
        == -1490
    )


async def test_unknown_payment_is_404_with_a_message(admin):
    response = await admin.client.post(
        f"/api/payments/{uuid.uuid4()}/resync",
        headers=AUTH,
    )
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "payment_not_found"
    assert (await admin.client.post("/api/payments/x/resync")).status_code == 401


async def _funded(amount):
    store = await make_store(stock=0)
    order = await make_order(store, reserve=False)
    await ledger.book_sale(str(uuid.uuid4()), store["tenant"].id, order.id, amount, 0, 0)
    return store["tenant"].id


async def test_withdrawal_approve_complete_and_reject_return_money(admin):
    tid = await _funded(10_000)
    w1 = await request_withdrawal(tid, 3_000, "52998224725", "account:1")
    w2 = await request_withdrawal(tid, 2_000, "vendedor@example.com", "account:1")
    c = admin.client
    early = await c.post(f"/api/withdrawals/{w1.id}/complete", headers=AUTH)
    assert early.status_code == 409
    assert (await c.post(f"/api/withdrawals/{w1.id}/approve", headers=AUTH)).status_code == 200
    done = await c.post(
        f"/api/withdrawals/{w1.id}/complete", headers=AUTH, json={"transfer_id": "E0000"}
    )
    body = await done.get_json()
    assert body["status"] == "completed" and body["acted_by"] == ACTOR
    assert (
        await c.post(f"/api/withdrawals/{w2.id}/reject", headers=AUTH, json={})
    ).status_code == 400
    rejected = await c.post(
        f"/api/withdrawals/{w2.id}/reject", headers=AUTH, json={"reason": "chave inválida"}
    )
    assert (await rejected.get_json())["status"] == "rejected"
    balance = await (await c.get(f"/api/tenants/{tid}/balance", headers=AUTH)).get_json()
    assert balance["total_cents"] == 7_000 and balance["withdrawable_cents"] == 7_000
    queue = await (await c.get("/api/withdrawals?status=completed", headers=AUTH)).get_json()
    assert [w["id"] for w in queue["withdrawals"]] == [w1.id]
    actions = (
        await AuditLog.filter(target_type="withdrawal", actor=ACTOR)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["withdrawal.processing", "withdrawal.completed", "withdrawal.rejected"]

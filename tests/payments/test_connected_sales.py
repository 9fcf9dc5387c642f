"""A connected store's sale, refund and webhooks on the Mercado Pago stand-in: the money lands
in the seller's account and the fee in the platform's, the ledger never sees it, withdrawals
only spend what the platform held before the switch."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sandbox.mercadopago.webhooks import sign_webhook
from shop import ledger
from shop.errors import InsufficientBalance
from shop.models import ConnectedCharge, LedgerEntry, Order, WebhookEvent
from shop.payments.connected_report import connected_totals
from shop.payments.mp_ids import api_of
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from shop.payments.webhook_intake import process_events, receive_mercadopago
from shop.states import OrderStatus
from shop.withdrawals import request_withdrawal
from tests.helpers.portal import make_seller
from tests.payments.connected_helpers import (
    SELLER_MP_ID,
    balances,
    connect_seller,
    connected_portal,
)
from tests.shop.helpers import SECRET, make_order, make_store
from web.common import payment_services

PLATFORM_MP_ID = "1234567890"  # the stand-in's default collector: the platform's own token
PIX_KEY = "11144477735"  # a CPF


async def _paid(app, mp, store) -> tuple[Order, str]:
    svc = payment_services(app)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(payment.provider_payment_id)
    await sync_payment(svc, str(payment.id), "test")
    return await Order.get(id=order.id), payment.provider_payment_id


@pytest.mark.parametrize("mp_api", ["payments", "orders"])
async def test_connected_sale_pays_the_seller_and_the_fee_not_the_ledger(
    db, redis_url, tmp_path, mp_api
):
    async with connected_portal(tmp_path, db, redis_url, MERCADOPAGO_API=mp_api) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=2000, tenant=seller.tenant)
        held, _ = await _paid(app, mp, store)  # before connecting: platform-collected
        assert held.status == OrderStatus.PAID
        held_balance = (await ledger.balance(seller.tenant.id)).withdrawable_cents
        assert held_balance == 1900  # R$ 20,00 less the 5% fee
        before = await balances(mp)

        await connect_seller(seller)
        entries = await LedgerEntry.all().count()
        order, provider_id = await _paid(app, mp, store)

        assert order.status == OrderStatus.PAID and api_of(provider_id) == mp_api
        remote = await mp.control.payment(provider_id)
        assert remote["collector_id"] == SELLER_MP_ID
        assert {"type": "application_fee", "amount": 1.0, "fee_payer": "collector"} in remote[
            "fee_details"
        ]
        after = await balances(mp)
        mp_fee = (2000 * 99 + 5000) // 10000
        assert after[str(SELLER_MP_ID)] == 2000 - mp_fee - 100
        assert after[PLATFORM_MP_ID] - before[PLATFORM_MP_ID] == 100
        assert await LedgerEntry.all().count() == entries  # no balance for a connected sale
        assert (await ledger.balance(seller.tenant.id)).withdrawable_cents == held_balance
        charge = await ConnectedCharge.get(payment__provider_payment_id=provider_id)
        assert charge.fee_cents == 100 and charge.sold_at is not None
        totals = await connected_totals(seller.tenant.id)
        assert (totals.sales, totals.gross_cents, totals.fee_cents) == (1, 2000, 100)

        with pytest.raises(InsufficientBalance):  # the connected sale is not withdrawable
            await request_withdrawal(seller.tenant.id, held_balance + 1, PIX_KEY, "test")
        withdrawal = await request_withdrawal(seller.tenant.id, held_balance, PIX_KEY, "test")
        assert withdrawal.amount_cents == held_balance  # money held before the switch

        _, html = await seller.text("/money/mercadopago")
        assert "R$ 20,00" in html and "R$ 1,00" in html


@pytest.mark.parametrize("mp_api", ["payments", "orders"])
async def test_connected_refund_comes_out_of_the_sellers_account(db, redis_url, tmp_path, mp_api):
    async with connected_portal(tmp_path, db, redis_url, MERCADOPAGO_API=mp_api) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=3000, tenant=seller.tenant)
        await connect_seller(seller)
        order, provider_id = await _paid(app, mp, store)
        paid = await balances(mp)
        assert (await ledger.balance(seller.tenant.id)).total_cents == 0

        # a platform store with this balance would be refused (RefundNotCovered)
        resp = await seller.post(f"/orders/{order.id}/refund")
        assert resp.status_code == 302
        assert (await Order.get(id=order.id)).status == OrderStatus.REFUNDED
        remote = await mp.control.payment(provider_id)
        assert remote["status"] == "refunded" and remote["collector_id"] == SELLER_MP_ID
        now = await balances(mp)
        assert now[str(SELLER_MP_ID)] == paid[str(SELLER_MP_ID)] - (3000 - 150)
        assert now[PLATFORM_MP_ID] == paid[PLATFORM_MP_ID] - 150  # MP gives its fee back
        assert await LedgerEntry.filter(tenant_id=seller.tenant.id).count() == 0
        totals = await connected_totals(seller.tenant.id)
        assert (totals.sales, totals.fee_cents, totals.refunded_cents) == (1, 0, 3000)


def _delivery(provider_id: str, user_id: int, secret: str = SECRET) -> tuple[dict, dict, bytes]:
    ts, rid = str(int(time.time() * 1000)), str(uuid.uuid4())
    body = {
        "id": int(time.time() * 1000),
        "live_mode": False,
        "type": "payment",
        "user_id": user_id,
        "api_version": "v1",
        "action": "payment.updated",
        "data": {"id": provider_id},
    }
    headers = {
        "x-request-id": rid,
        "x-signature": f"ts={ts},v1={sign_webhook(secret, provider_id, rid, ts)}",
    }
    return {"data.id": provider_id, "type": "payment"}, headers, json.dumps(body).encode()


async def test_seller_webhooks_are_verified_and_routed_unknown_sellers_ignored(
    db, redis_url, tmp_path
):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=2000, tenant=seller.tenant)
        await connect_seller(seller)
        svc = payment_services(app)
        order = await make_order(store)
        payment = await create_pix_payment(svc, order.id, "buyer:555")
        pid = payment.provider_payment_id
        await mp.control.approve(int(pid), notify=False)

        query, headers, raw = _delivery(pid, SELLER_MP_ID, secret="not-the-secret")
        forged = await receive_mercadopago(SECRET, query, headers, raw)
        assert forged.status == 401 and await WebhookEvent.all().count() == 0

        query, headers, raw = _delivery(pid, SELLER_MP_ID)
        receipt = await receive_mercadopago(SECRET, query, headers, raw)
        assert receipt.to_process
        result = await process_events(svc, [receipt.dedupe_key], pid)
        assert result is not None and result.outcome == "processed"
        assert (await Order.get(id=order.id)).status == OrderStatus.PAID  # read with her token

        # a payment in an account nobody connected (another application's seller)
        stranger = await mp.api.post(
            "/v1/payments",
            json={
                "transaction_amount": 5,
                "payment_method_id": "pix",
                "payer": {"email": "x@example.com"},
            },
            headers={"X-Idempotency-Key": "stranger", "Authorization": "Bearer APP_USR-1-999888"},
        )
        other = str(stranger.json()["id"])
        query, headers, raw = _delivery(other, 999888)
        receipt = await receive_mercadopago(SECRET, query, headers, raw)
        result = await process_events(svc, [receipt.dedupe_key], other)
        assert result is not None and result.outcome == "unknown_payment"
        event = await WebhookEvent.get(dedupe_key=receipt.dedupe_key)
        assert event.outcome == "unknown_payment"  # recorded, and nothing else happened
        assert await Order.filter(tenant_id=seller.tenant.id).count() == 1


async def test_admin_sees_connected_sales_and_the_fee_earned(db, redis_url, tmp_path):
    from tests.helpers.admin import AUTH, admin_settings
    from web.admin import create_app as create_admin

    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=4000, tenant=seller.tenant)
        await _paid(app, mp, store)  # platform-collected: on the ledger, not here
        await connect_seller(seller)
        order, provider_id = await _paid(app, mp, store)

        admin = create_admin(admin_settings(tmp_path, db, redis_url))
        async with admin.test_app():
            client = admin.test_client()
            rows = await (await client.get("/api/transactions/connected", headers=AUTH)).get_json()
            assert rows["page"]["total"] == 1
            (row,) = rows["items"]
            assert row["order_id"] == order.id and row["provider_payment_id"] == provider_id
            assert (row["amount_cents"], row["fee_cents"], row["status"]) == (4000, 200, "approved")
            assert row["mp_user_id"] == str(SELLER_MP_ID)
            kpi = await (await client.get("/api/indicators/connected", headers=AUTH)).get_json()
            assert (kpi["stores_connected"], kpi["sales"], kpi["fee_cents"]) == (1, 1, 200)
            assert kpi["gross_cents"] == 4000 and kpi["refresh_failing"] == 0
            other = await client.get(
                f"/api/transactions/connected?tenant_id={seller.tenant.id + 1}", headers=AUTH
            )
            assert (await other.get_json())["page"]["total"] == 0

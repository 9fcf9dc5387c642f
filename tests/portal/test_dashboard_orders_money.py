"""Dashboard (live state, lastError hints, restart), orders and money pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from fleet import control_protocol, keys
from fleet.models import BotInstance
from fleet.runtime import RuntimeStore
from fleet.states import InstanceState
from shop import ledger
from shop.models import Order, Product, Variation, Withdrawal
from tests.helpers.portal import make_seller


async def _store(seller):
    instance = await BotInstance.create(
        tenant=seller.tenant, token_enc="x", application_id="9", bot_username="LojaBot"
    )
    product = await Product.create(tenant=seller.tenant, name="Netflix")
    variation = await Variation.create(
        tenant=seller.tenant, product=product, name="1 mês", price_cents=2000
    )
    return instance, product, variation


async def _order(seller, instance, product, variation, status="delivered", buyer="ana"):
    now = datetime.now(UTC)
    return await Order.create(
        tenant=seller.tenant,
        instance=instance,
        product=product,
        variation=variation,
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id="123456789012345678",
        buyer_name=buyer,
        quantity=1,
        unit_price_cents=2000,
        total_cents=2000,
        status=status,
        paid_at=now if status != "pending" else None,
        delivered_at=now if status == "delivered" else None,
        delivery_path="dm" if status == "delivered" else None,
    )


async def test_live_panel_shows_state_error_hint_sales_and_balance(portal):
    seller = await make_seller(portal)
    instance, product, variation = await _store(seller)
    store = RuntimeStore(portal.config["REDIS"])
    await store.transition(instance.id, InstanceState.STARTING)
    await store.transition(instance.id, InstanceState.ERROR)
    await store.set_last_error(instance.id, "Token inválido: gere um novo token", "4004")
    order = await _order(seller, instance, product, variation)
    await _order(seller, instance, product, variation, status="waiting_stock")
    await ledger.book_sale("p1", seller.tenant.id, order.id, 2000, 500, 0)
    status, html = await seller.text("/dashboard/live")
    assert status == 200
    assert 'data-state="error"' in html and "Token inválido" in html
    assert "gere um novo token no Developer Portal" in html  # the hint: what to do
    assert 'id="today-sales">R$ 40,00<' in html and 'id="waiting-count">1<' in html
    assert 'id="balance-available">R$ 19,00<' in html
    assert 'hx-trigger="every 3s"' in html
    await store.transition(instance.id, InstanceState.STARTING)
    await store.transition(instance.id, InstanceState.ONLINE)
    await store.beat(instance.id, 42.4, 3)
    _, html = await seller.text("/dashboard/live")
    assert 'data-state="online"' in html and "42 ms" in html and "Último erro" not in html


async def test_restart_sends_a_control_command(portal):
    seller = await make_seller(portal)
    instance, *_ = await _store(seller)
    redis = portal.config["REDIS"]
    await control_protocol.ensure_group(redis)
    seen = []

    async def orchestrator():
        while not seen:
            for cmd in await control_protocol.read_commands(redis, "test", block_ms=100):
                seen.append(cmd)
                await control_protocol.reply(
                    redis,
                    cmd,
                    control_protocol.result(
                        True, control_protocol.ResultCode.OK, "restarted", "starting"
                    ),
                )

    task = asyncio.create_task(orchestrator())
    resp = await seller.post(f"/instances/{instance.id}/restart")
    await asyncio.wait_for(task, 5)
    assert resp.status_code == 302
    assert seen[0].action == control_protocol.Action.RESTART and seen[0].instance_id == instance.id
    assert seen[0].actor == f"account:{seller.account.id}"
    _, html = await seller.text("/")
    assert "Bot reiniciado" in html


async def test_orders_filter_detail_and_redeliver(portal):
    seller = await make_seller(portal)
    instance, product, variation = await _store(seller)
    delivered = await _order(seller, instance, product, variation, buyer="ana")
    await _order(seller, instance, product, variation, status="pending", buyer="bruno")
    _, html = await seller.text("/orders?status=delivered")
    assert f'id="order-{delivered.id}"' in html and "bruno" not in html
    _, html = await seller.text("/orders?buyer=bru")
    assert "bruno" in html and f'id="order-{delivered.id}"' not in html
    _, html = await seller.text(f"/orders/{delivered.id}")
    assert "Pagamento aprovado" in html and "Entregue (por DM)" in html
    resp = await seller.post(f"/orders/{delivered.id}/redeliver")
    assert resp.status_code == 302
    entries = await portal.config["REDIS"].xrange(keys.delivery_stream(instance.id))
    assert [e[1]["order_id"] for e in entries] == [str(delivered.id)]


async def test_money_balance_withdrawal_and_csv(portal):
    seller = await make_seller(portal)
    instance, product, variation = await _store(seller)
    order = await _order(seller, instance, product, variation)
    await ledger.book_sale("pay-1", seller.tenant.id, order.id, 10000, 500, 0)  # R$ 95 now
    too_much = await seller.post(
        "/money/withdrawals", {"amount": "200,00", "pix_key": "seller@example.com"}
    )
    assert too_much.status_code == 400 and "Saldo insuficiente" in await too_much.get_data(True)
    bad_key = await seller.post("/money/withdrawals", {"amount": "10", "pix_key": "nope"})
    assert bad_key.status_code == 400 and "Chave PIX inválida" in await bad_key.get_data(True)
    ok = await seller.post(
        "/money/withdrawals", {"amount": "50,00", "pix_key": "seller@example.com"}
    )
    assert ok.status_code == 302
    w = await Withdrawal.get(tenant_id=seller.tenant.id)
    assert (w.amount_cents, str(w.status)) == (5000, "requested")
    _, html = await seller.text("/money")
    assert 'id="money-available">R$ 45,00<' in html and f'id="withdrawal-{w.id}"' in html
    csv = await seller.client.get("/money/ledger.csv?kind=sale")
    text = await csv.get_data(as_text=True)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "sale;9500;95,00" in text and "withdrawal;" not in text


async def test_english_switch(portal):
    seller = await make_seller(portal)
    resp = await seller.post("/lang", {"locale": "en", "next": "/products"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/products"
    _, html = await seller.text("/products")
    assert "New product" in html and 'lang="en"' in html
    anon = portal.test_client()
    text = await (await anon.get("/login")).get_data(as_text=True)
    assert "Entrar com Discord" in text  # pt-BR by default

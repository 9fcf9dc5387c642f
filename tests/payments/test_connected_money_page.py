"""A connected store's money page and dashboard: what it received in its own Mercado Pago
account and the fee, no balance and no withdrawal form for money the platform does not hold,
and the balance held from before the switch still shown and withdrawable."""

from __future__ import annotations

import re

from shop.models import Withdrawal
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from tests.helpers.portal import make_seller
from tests.payments.connected_helpers import connect_seller, connected_portal
from tests.shop.helpers import make_order, make_store
from web.common import payment_services


async def _sale(app, mp, store) -> None:
    svc = payment_services(app)
    order = await make_order(store)
    payment = await create_pix_payment(svc, order.id, "buyer:555")
    await mp.control.approve(payment.provider_payment_id)
    await sync_payment(svc, str(payment.id), "test")


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert match, f"#{element_id} missing"
    return match.group(1)


async def test_connected_store_without_held_money_has_no_balance_or_withdrawal(
    db, redis_url, tmp_path
):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=2000, tenant=seller.tenant)
        _, before = await seller.text("/money")
        assert 'id="withdraw-form"' in before and 'id="mp-received"' not in before
        await connect_seller(seller)
        await _sale(app, mp, store)
        _, html = await seller.text("/money")
        assert text_of(html, "mp-received") == "R$ 19,00"  # R$ 20,00 less the 5% fee
        assert text_of(html, "mp-money-fee") == "R$ 1,00"
        assert "Recebido na sua conta Mercado Pago" in html and "1 venda(s)" in html
        assert 'id="withdraw-form"' not in html and 'id="balance"' not in html
        _, dashboard = await seller.text("/dashboard/live")
        assert text_of(dashboard, "mp-received") == "R$ 19,00"
        assert 'id="balance-available"' not in dashboard
        _, report = await seller.text("/money/mercadopago")
        assert ">paga<" in report and ">approved<" not in report  # translated status


async def test_money_held_before_connecting_stays_shown_and_withdrawable(db, redis_url, tmp_path):
    async with connected_portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        store = await make_store(price_cents=2000, tenant=seller.tenant)
        await _sale(app, mp, store)  # platform-collected: R$ 19,00 on the balance
        await connect_seller(seller)
        await _sale(app, mp, store)  # connected: into the seller's account
        _, html = await seller.text("/money")
        assert text_of(html, "mp-received") == "R$ 19,00"
        assert 'id="held-note"' in html and text_of(html, "money-available") == "R$ 19,00"
        assert 'id="withdraw-form"' in html
        _, dashboard = await seller.text("/dashboard/live")
        assert "saldo anterior na plataforma: R$ 19,00" in dashboard
        form = {"amount": "19,00", "pix_key": "11144477735", "pix_key_type": "cpf"}
        answer = await seller.post("/money/withdrawals", form)
        assert answer.status_code == 302
        (withdrawal,) = await Withdrawal.filter(tenant_id=seller.tenant.id)
        assert withdrawal.amount_cents == 1900

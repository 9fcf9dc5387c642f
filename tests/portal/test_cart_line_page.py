"""The portal order page of a cart line that is not the lead (issue 17 follow-up): it shows the
cart's one payment, offers the line's own total as its refund, and its timeline shows the
cart's creation and the refunds of that line (not the other lines'); a refund refused because
another refund of the payment is in flight says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.i18n import format_brl
from shop.models import Order, RefundLease
from shop.states import OrderStatus
from tests.helpers.portal import make_seller
from tests.portal.test_cart_portal import _paid_cart, _portal


async def test_a_non_lead_line_shows_its_carts_payment_and_its_own_timeline(
    db, redis_url, tmp_path
):
    async with _portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        cart, lines, payment = await _paid_cart(app, mp, seller.tenant)
        line = lines[2]
        status, html = await seller.text(f"/orders/{line.id}")
        assert status == 200
        assert f"<code>{payment.provider_payment_id}</code>" in html  # the cart's one PIX
        assert f'placeholder="{format_brl(line.total_cents)}"' in html  # the line's own total
        assert f"Carrinho #{cart.id} criado: 3 linha(s), total {format_brl(cart.total_cents)}" in (
            html
        )
        # another line refunded: not on this line's timeline; this line's refund is
        assert (await seller.post(f"/orders/{lines[1].id}/refund")).status_code == 302
        _, html = await seller.text(f"/orders/{line.id}")
        assert "Reembolso desta linha solicitado" not in html
        assert (await seller.post(f"/orders/{line.id}/refund")).status_code == 302
        assert (await Order.get(id=line.id)).status == OrderStatus.REFUNDED
        _, html = await seller.text(f"/orders/{line.id}")
        assert f"Reembolso desta linha solicitado: {format_brl(line.total_cents)}" in html
        _, other = await seller.text(f"/orders/{lines[1].id}")
        assert f"Reembolso desta linha solicitado: {format_brl(lines[1].total_cents)}" in other


async def test_a_refund_while_another_is_in_flight_is_refused_with_a_clear_message(
    db, redis_url, tmp_path
):
    async with _portal(tmp_path, db, redis_url) as (app, mp):
        seller = await make_seller(app)
        _, lines, payment = await _paid_cart(app, mp, seller.tenant)
        until = datetime.now(UTC) + timedelta(minutes=1)
        await RefundLease.create(payment_id=payment.id, token="other", expires_at=until)
        resp = await seller.post(f"/orders/{lines[1].id}/refund")
        assert resp.status_code == 302
        _, html = await seller.text(f"/orders/{lines[1].id}")
        assert "está em andamento" in html
        assert (await Order.get(id=lines[1].id)).status == OrderStatus.PAID
        remote = await mp.control.payment(int(payment.provider_payment_id))
        assert remote["transaction_amount_refunded"] == 0

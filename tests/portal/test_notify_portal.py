"""The seller turns DM notice kinds off in the settings and sees recent notices on the
dashboard (issue 18)."""

from __future__ import annotations

from shop.models import NoticeKind, Tenant
from shop.notify.seller import notify_seller
from tests.helpers.portal import make_seller


async def test_notify_portal_settings_turn_kinds_off_and_dashboard_lists_notices(portal):
    seller = await make_seller(portal, "Loja Aviso")
    status, page = await seller.text("/settings")
    assert status == 200 and 'id="notice-withdrawal"' in page and "Avisos por DM" in page
    assert 'name="notice_low_stock" id="notice-low_stock" checked' in page

    keep_on = {"notice_withdrawal": "on", "notice_refund": "on"}
    resp = await seller.post("/settings/notices", keep_on)
    assert resp.status_code == 302
    tenant = await Tenant.get(id=seller.tenant.id)
    assert "low_stock" in tenant.notices_off and "withdrawal" not in tenant.notices_off
    _, page = await seller.text("/settings")
    assert 'name="notice_low_stock" id="notice-low_stock" >' in page

    params = {"order_id": 9, "quantity": 2}
    await notify_seller(tenant.id, NoticeKind.WAITING_STOCK, params, dedupe="w9")
    params = {"order_id": 9, "amount_cents": 1990}
    await notify_seller(tenant.id, NoticeKind.REFUND, params, dedupe="r9")
    _, page = await seller.text("/")
    assert 'id="notices"' in page
    assert "o pedido #9 foi pago e aguarda estoque" in page
    assert "só no painel (desligado)" in page  # waiting_stock is off: no DM
    assert "reembolso do pedido #9 (R$ 19,90)" in page and "enviando" in page

"""Issue 13 item 7 in the portal: the seller blocks a buyer (from an order or by Discord id),
sees who is blocked and why, lifts a block; every form carries CSRF and another store can
neither see nor change this store's blocklist. The open-order cap is a store setting."""

from __future__ import annotations

import pytest

from core.models import AuditLog
from shop import checkout
from shop.buyer_limits import BuyerBlocked
from shop.models import BlockedBuyer, Tenant
from shop.payments.service import create_pix_payment
from shop.payments.sync import sync_payment
from tests.helpers.portal import make_seller
from tests.portal.conftest import portal  # noqa: F401
from tests.shop.helpers import MP_FAST, make_order, make_store
from web.common import payment_services

BUYER = "555"  # make_order's buyer
USER_ID = "123456789012345678"


async def _seller_with_order(app):
    seller = await make_seller(app)
    store = await make_store(tenant=seller.tenant)
    return seller, store, await make_order(store)


async def test_seller_blocks_the_buyer_from_an_order_and_checkout_refuses_them(portal):  # noqa: F811
    seller, store, order = await _seller_with_order(portal)
    _, page = await seller.text(f"/orders/{order.id}")
    assert "Bloquear comprador" in page and f"/orders/{order.id}/block-buyer" in page
    refused = await seller.client.post(
        f"/orders/{order.id}/block-buyer", form={"csrf_token": "forged"}
    )
    assert refused.status_code == 403
    assert not await BlockedBuyer.exists()
    resp = await seller.post(f"/orders/{order.id}/block-buyer")
    assert resp.status_code == 302
    entry = await BlockedBuyer.get(tenant_id=seller.tenant.id, discord_id=BUYER)
    assert entry.order_id == order.id and entry.source == "manual"  # type: ignore[attr-defined]
    audit = await AuditLog.get(action="buyer.blocked", tenant_id=seller.tenant.id)
    assert audit.actor == f"account:{seller.account.id}" and audit.target_id == BUYER
    with pytest.raises(BuyerBlocked):
        await checkout.place_order(
            checkout.CheckoutRequest(
                seller.tenant.id, store["instance"].id, store["variation"].id, 1, BUYER, key="k1"
            )
        )
    again = await seller.post(f"/orders/{order.id}/block-buyer")  # twice: still one entry
    assert again.status_code == 302 and await BlockedBuyer.all().count() == 1


async def test_block_by_discord_id_is_bounded_listed_and_liftable(portal):  # noqa: F811
    seller = await make_seller(portal)
    for bad in (
        "123",
        "abc",
        "1" * 21,
        "１２３４５６７８９０１２３４５６７８",
        USER_ID + "\n1",
        "9" * 5000,
        "",
    ):
        resp = await seller.post("/blocklist", {"discord_id": bad})
        assert resp.status_code == 400, bad
        assert "17 a 20 dígitos" in (await resp.get_data(as_text=True))
    assert not await BlockedBuyer.exists()
    resp = await seller.post("/blocklist", {"discord_id": f" {USER_ID} ", "reason": "golpe"})
    assert resp.status_code == 302
    status, page = await seller.text("/blocklist")
    assert status == 200 and USER_ID in page and "golpe" in page
    assert "Bloqueio manual" in page
    entry = await BlockedBuyer.get(discord_id=USER_ID)
    forged = await seller.client.post(f"/blocklist/{entry.id}/lift", form={})
    assert forged.status_code == 403 and await BlockedBuyer.exists()
    resp = await seller.post(f"/blocklist/{entry.id}/lift")
    assert resp.status_code == 302 and not await BlockedBuyer.exists()
    _, page = await seller.text("/blocklist")
    assert USER_ID not in page and "Nenhum comprador bloqueado." in page
    actions = (
        await AuditLog.filter(tenant_id=seller.tenant.id, action__startswith="buyer.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["buyer.blocked", "buyer.unblocked"]


async def test_another_store_cannot_see_block_or_lift_in_my_store(portal):  # noqa: F811
    seller, _, order = await _seller_with_order(portal)
    intruder = await make_seller(portal, "Intrusa")
    resp = await intruder.post(f"/orders/{order.id}/block-buyer")
    assert resp.status_code == 404
    assert not await BlockedBuyer.exists()
    await seller.post("/blocklist", {"discord_id": USER_ID, "reason": "segredo"})
    entry = await BlockedBuyer.get(discord_id=USER_ID)
    resp = await intruder.post(f"/blocklist/{entry.id}/lift")
    assert resp.status_code == 404
    assert await BlockedBuyer.filter(id=entry.id, tenant_id=seller.tenant.id).exists()
    _, page = await intruder.text("/blocklist")
    assert USER_ID not in page and "segredo" not in page
    await intruder.post("/blocklist", {"discord_id": USER_ID})  # their own, separate block
    assert await BlockedBuyer.filter(discord_id=USER_ID).count() == 2
    assert await AuditLog.filter(action="buyer.unblocked").count() == 0


async def test_blocklist_page_in_english(portal):  # noqa: F811
    seller = await make_seller(portal, locale="en")
    await seller.post("/blocklist", {"discord_id": USER_ID})
    _, page = await seller.text("/blocklist")
    assert "Blocked buyers" in page and "Blocked by you" in page and "Unblock" in page
    resp = await seller.post("/blocklist", {"discord_id": "12"})
    assert "17 to 20" in await resp.get_data(as_text=True)


async def test_open_order_cap_is_a_store_setting(portal):  # noqa: F811
    seller = await make_seller(portal)
    _, page = await seller.text("/settings")
    assert 'name="max_open_orders_per_buyer"' in page and 'value="2"' in page
    form = {
        "name": "Loja",
        "delivery_mode": "dm_then_channel",
        "locale": "pt-BR",
        "low_stock_threshold": "5",
    }
    for bad in ("0", "21", "-1", "²", "9" * 400, ""):
        resp = await seller.post("/settings", {**form, "max_open_orders_per_buyer": bad})
        assert resp.status_code == 400, bad
    resp = await seller.post("/settings", {**form, "max_open_orders_per_buyer": "4"})
    assert resp.status_code == 302
    assert (await Tenant.get(id=seller.tenant.id)).max_open_orders_per_buyer == 4


async def test_chargeback_block_shows_in_the_portal_and_the_seller_lifts_it(
    db, redis_url, tmp_path
):
    from sandbox.mercadopago.testing import mp_harness
    from tests.helpers.portal import portal_settings
    from web.portal import create_app

    async with mp_harness(MP_FAST) as mp:
        app = create_app(
            portal_settings(
                tmp_path,
                db,
                redis_url,
                MERCADOPAGO_API_BASE=mp.url,
                MERCADOPAGO_ACCESS_TOKEN="TEST-token",
            )
        )
        async with app.test_app():
            seller, _, order = await _seller_with_order(app)
            svc = payment_services(app)
            payment = await create_pix_payment(svc, order.id, f"buyer:{BUYER}")
            await mp.control.approve(int(payment.provider_payment_id))
            await sync_payment(svc, str(payment.id), "test")
            await mp.control.chargeback(int(payment.provider_payment_id))
            await sync_payment(svc, str(payment.id), "system:webhook")
            _, page = await seller.text("/blocklist")
            assert BUYER in page and "Chargeback" in page and f"#{order.id}" in page
            entry = await BlockedBuyer.get(tenant_id=seller.tenant.id, discord_id=BUYER)
            resp = await seller.post(f"/blocklist/{entry.id}/lift")
            assert resp.status_code == 302 and not await BlockedBuyer.exists()

"""End to end with real worker processes: what a buyer sees in the Discord sandbox."""

from __future__ import annotations

import pytest

from ops.fleet_harness import make_store
from shop.models import Coupon, CouponKind, Payment, StockItem
from shop.payments.mp_ids import api_of
from shop.states import StockStatus
from tests.storefront.helpers import (
    approve_and_sync,
    buy,
    order_id_of,
    post_panel,
    wait_ready,
    wait_status,
)

# The purchase suite runs once per Mercado Pago API (MERCADOPAGO_API for the workers).
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("mp_api", ["payments", "orders"])]


async def test_happy_path_panel_variation_quantity_coupon_pix_dm_role_log(
    fleet, dc, mpc, svc, mp_api
):
    store = await make_store(
        fleet,
        dc,
        stock={"1 mês": ["KEY-A1", "KEY-A2", "KEY-A3"], "3 meses": ["KEY-B1"]},
        prices={"1 mês": 1990, "3 meses": 4990},
    )
    await Coupon.create(tenant=store.tenant, code="PROMO10", kind=CouponKind.PERCENT, value=1000)
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    assert "R$ 19,90 – R$ 49,90" in panel.text() and "4 disponível" in panel.text()

    pix = await buy(store.buyer, panel, store.variations[0].id, quantity=2, coupon="promo10")
    text = pix.message.text()
    assert pix.ephemeral and "R$ 35,82" in text  # 2 × 19,90 − 10 %
    assert pix.message.attachments[0]["filename"] == "pix.png"
    png = await dc.fetch_attachment(pix.message.attachments[0])
    assert png.startswith(b"\x89PNG")
    order_id = order_id_of(pix)
    copy = await (await store.buyer.click(pix.message, f"vt:pix:{order_id}")).wait_reply()
    assert copy.content.startswith("000201") and copy.content in text  # the BR Code alone
    reserved = await StockItem.filter(order_id=order_id).order_by("id")
    assert [i.status for i in reserved] == [StockStatus.RESERVED] * 2

    payment = await Payment.get(order_id=order_id)
    assert api_of(payment.provider_payment_id) == mp_api  # the worker charged through it
    await approve_and_sync(mpc, svc, order_id)
    dm = await store.buyer.wait_dm(lambda m: m.embeds, timeout=15)
    items = {fleet.vault.decrypt(i.content_enc).reveal() for i in reserved}
    assert items == {"KEY-A1", "KEY-A2"}
    delivered = [line for line in dm.text().split("\n") if line.startswith("KEY-")]
    assert sorted(delivered) == sorted(items)
    await store.buyer.wait_role(store.guild, "Cliente", timeout=10)
    log = await dc.wait_channel_message(store.log_channel, lambda m: m.embeds, timeout=10)
    assert f"#{order_id}" in log.text() and "R$ 35,82" in log.text()
    order = await wait_status(order_id, "delivered")
    assert order.delivery_path == "dm" and order.discount_cents == 398
    assert (await Coupon.get(code="PROMO10")).uses == 1
    # the panel refreshed itself: 2 of the 4 items are gone
    await dc.wait_channel_message(
        store.shop_channel, lambda m: m.id == panel.id and "2 disponível" in m.text()
    )
    mine = await (
        await store.buyer.slash(store.bot, store.guild, "loja", "meus-pedidos")
    ).wait_reply()
    assert f"#{order_id}" in mine.message.text() and "entregue" in mine.message.text()
    resent = await (
        await store.buyer.select(mine.message, "vt:resend", [str(order_id)])
    ).wait_reply()
    assert "reenviados" in resent.content
    dms = [m for m in await store.buyer.dms() if m.embeds]
    assert len(dms) == 2 and dms[1].text() == dms[0].text()

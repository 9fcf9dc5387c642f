"""Issue 13 item 7 end to end: what a refused buyer sees in the Discord sandbox, with real
worker processes (the `tests/storefront` fleet)."""

from __future__ import annotations

import pytest

from ops.fleet_harness import make_store
from shop.blocklist import block_buyer
from shop.models import Order, StockItem
from shop.states import StockStatus
from tests.storefront.conftest import fleet_env, svc  # noqa: F401
from tests.storefront.helpers import buy, order_id_of, post_panel, run_command, wait_ready

pytestmark = pytest.mark.e2e


async def test_buyer_sees_the_cap_the_maximum_and_a_neutral_refusal(fleet, dc, mpc, svc):  # noqa: F811
    store = await make_store(fleet, dc, stock={"1 mês": [f"KEY-{n}" for n in range(8)]})
    fleet.start()
    await wait_ready(fleet, dc, store)
    panel = await post_panel(store)
    variation = store.variations[0].id
    too_many = await run_command(
        store.buyer, store, "comprar", {"produto": "Netflix", "quantidade": 6}
    )
    assert "escolha de 1 a 5" in too_many.content  # the product's max_per_order is 5
    for _ in range(2):  # two unpaid orders: the store's default cap
        order_id_of(await buy(store.buyer, panel, variation))
    assert len(await mpc.payments()) == 2

    third = await (await store.buyer.click(panel, f"vt:buy:{variation}")).wait_reply(timeout=10)
    assert third.ephemeral and "Você já tem 2 pedido(s) aguardando pagamento" in third.content
    assert "Pague ou cancele" in third.content

    await block_buyer(store.tenant.id, str(store.buyer.id), "account:1", reason="golpe")
    refused = await (await store.buyer.click(panel, f"vt:buy:{variation}")).wait_reply(timeout=10)
    assert refused.content == "⚠️ Não foi possível concluir a compra nesta loja."
    assert await Order.filter(tenant_id=store.tenant.id).count() == 2
    assert await StockItem.filter(status=StockStatus.RESERVED).count() == 2
    assert len(await mpc.payments()) == 2, "a refused buyer reached Mercado Pago"

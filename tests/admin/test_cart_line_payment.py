"""The admin API finds a cart line's payment (issue 17 follow-up): `GET /api/orders/<line>`
names the cart's one payment for every line, and `GET /api/payments?order_id=<line>` lists it
for a line that is not the lead."""

from __future__ import annotations

from tests.admin.test_cart_admin import _cart_with_payment
from tests.helpers.admin import AUTH
from tests.shop.helpers import make_order, make_store


async def test_every_cart_line_names_the_carts_one_payment(app, client):
    _, cart, lines = await _cart_with_payment()
    payment_ids = set()
    for line in lines:
        body = await (await client.get(f"/api/orders/{line.id}", headers=AUTH)).get_json()
        payment_ids.add(body["payment_id"])
        listed = await (
            await client.get(f"/api/payments?order_id={line.id}", headers=AUTH)
        ).get_json()
        assert [p["provider_payment_id"] for p in listed["payments"]] == ["cart-pay-1"]
    assert len(payment_ids) == 1 and None not in payment_ids
    single = await make_order(await make_store())
    alone = await (await client.get(f"/api/orders/{single.id}", headers=AUTH)).get_json()
    assert alone["payment_id"] is None  # no payment yet
    none = await (await client.get(f"/api/payments?order_id={single.id}", headers=AUTH)).get_json()
    assert none["payments"] == []

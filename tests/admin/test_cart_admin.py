"""Carts in the admin API (issue 17): an order names its cart and the lead line lists the
cart's lines; `GET /api/carts/<id>` shows the cart with its one payment; the orders CSV and
the payments CSV carry the cart columns; a store filter shows that store's orders only."""

from __future__ import annotations

import csv
import io

from shop.cart_checkout import place_cart
from shop.models import Order, Payment
from shop.states import PaymentStatus
from tests.helpers.admin import AUTH
from tests.shop.cart_helpers import coupon, fill_cart, request, three_line_store
from tests.shop.helpers import make_order, make_store


async def _cart_with_payment():
    store = await three_line_store()
    await coupon(store)
    await fill_cart(store, {"a": 2, "b": 1, "c": 1})
    cart, _ = await place_cart(request(store, coupon_code="DEZ"))
    lines = await Order.filter(cart_id=cart.id).order_by("id")
    await Payment.create(
        tenant_id=store["tenant"].id,
        order_id=lines[0].id,
        cart_id=cart.id,
        amount_cents=cart.total_cents,
        provider_payment_id="cart-pay-1",
        status=PaymentStatus.APPROVED,
    )
    return store, cart, lines


async def test_order_json_names_its_cart_and_the_lead_line_lists_the_lines(app, client):
    store, cart, lines = await _cart_with_payment()
    lead = await (await client.get(f"/api/orders/{lines[0].id}", headers=AUTH)).get_json()
    assert lead["cart_id"] == cart.id
    assert [ln["order_id"] for ln in lead["cart_lines"]] == [o.id for o in lines]
    assert [ln["index"] for ln in lead["cart_lines"]] == [1, 2, 3]
    assert sum(ln["total_cents"] for ln in lead["cart_lines"]) == cart.total_cents
    other = await (await client.get(f"/api/orders/{lines[2].id}", headers=AUTH)).get_json()
    assert other["cart_id"] == cart.id and other["cart_lines"] is None
    single = await make_order(await make_store())
    alone = await (await client.get(f"/api/orders/{single.id}", headers=AUTH)).get_json()
    assert alone["cart_id"] is None and alone["cart_lines"] is None
    listed = await (await client.get("/api/orders?limit=10", headers=AUTH)).get_json()
    assert {o["id"]: o["cart_id"] for o in listed["items"]}[lines[1].id] == cart.id

    body = await (await client.get(f"/api/carts/{cart.id}", headers=AUTH)).get_json()
    assert body["tenant_id"] == store["tenant"].id and body["coupon_code"] == "DEZ"
    subtotal = 2 * 1990 + 1000 + 555
    assert body["subtotal_cents"] == subtotal and body["discount_cents"] == subtotal // 10
    assert [ln["quantity"] for ln in body["lines"]] == [2, 1, 1]
    assert body["payment"]["provider_payment_id"] == "cart-pay-1"
    assert body["payment"]["amount_cents"] == body["total_cents"] == cart.total_cents
    missing = await client.get(f"/api/carts/{cart.id + 1000}", headers=AUTH)
    assert missing.status_code == 404
    assert (await client.get(f"/api/carts/{cart.id}")).status_code == 401  # token required


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_orders_csv_has_cart_columns_and_filters_by_store(app, client):
    store, cart, lines = await _cart_with_payment()
    other_store = await make_store()
    single = await make_order(other_store)
    resp = await client.get(f"/api/orders.csv?tenant_id={store['tenant'].id}", headers=AUTH)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = _csv(await resp.get_data(as_text=True))
    assert [int(r["id"]) for r in rows] == [o.id for o in lines]  # this store's only
    assert [(r["cart_id"], r["cart_line"], r["cart_lines"]) for r in rows] == [
        (str(cart.id), str(i), "3") for i in (1, 2, 3)
    ]
    assert {r["cart_total_cents"] for r in rows} == {str(cart.total_cents)}
    assert sum(int(r["total_cents"]) for r in rows) == cart.total_cents

    every = _csv(await (await client.get("/api/orders.csv", headers=AUTH)).get_data(as_text=True))
    alone = next(r for r in every if int(r["id"]) == single.id)
    assert alone["cart_id"] == alone["cart_line"] == alone["cart_total_cents"] == ""
    bad = await client.get("/api/orders.csv?limit=50001", headers=AUTH)
    assert bad.status_code == 400

    pay = await client.get(
        f"/api/transactions/payments.csv?tenant_id={store['tenant'].id}", headers=AUTH
    )
    payments = _csv(await pay.get_data(as_text=True))
    assert [(p["order_id"], p["cart_id"]) for p in payments] == [(str(lines[0].id), str(cart.id))]

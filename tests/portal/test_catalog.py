"""Products, variations and coupons: CRUD with clear validation messages."""

from __future__ import annotations

from core.models import AuditLog
from shop.catalog import parse_money
from shop.models import Coupon, Product, Variation
from tests.helpers.portal import make_seller


def test_parse_money_accepts_brazilian_and_dot_decimals():
    assert parse_money("19,90") == 1990
    assert parse_money("R$ 1.234,56") == 123456
    assert parse_money("10.5") == 1050
    assert parse_money("10") == 1000
    assert parse_money("1,999") is None and parse_money("abc") is None and parse_money("") is None


async def test_product_with_two_variations_and_validation(portal):
    seller = await make_seller(portal)
    bad = await seller.post(
        "/products/new", {"name": "", "image_url": "http://x.y/a.png", "max_per_order": "0"}
    )
    text = await bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Campo obrigatório" in text and "https://" in text and "entre 1 e 100" in text
    resp = await seller.post(
        "/products/new",
        {"name": "Netflix", "description": "Tela 4K", "max_per_order": "2", "active": "on"},
    )
    product = await Product.get(tenant_id=seller.tenant.id)
    assert resp.headers["Location"] == f"/products/{product.id}/edit"
    for name, price in (("1 mês", "19,90"), ("3 meses", "49.90")):
        assert (
            await seller.post(f"/products/{product.id}/variations", {"name": name, "price": price})
        ).status_code == 302
    for price in ("0", "-5", "abc", "100000,01"):
        resp = await seller.post(
            f"/products/{product.id}/variations", {"name": "x", "price": price}
        )
        assert resp.status_code == 400, price
    prices = (
        await Variation.filter(product=product).order_by("id").values_list("price_cents", flat=True)
    )
    assert prices == [1990, 4990]
    status, page = await seller.text("/products")
    assert "R$ 19,90" in page and "R$ 49,90" in page
    v = await Variation.get(product=product, name="1 mês")
    await seller.post(
        f"/variations/{v.id}/edit", {"name": "1 mês", "price": "17,00", "active_present": "1"}
    )
    v = await Variation.get(id=v.id)
    assert v.price_cents == 1700 and v.active is False
    change = await AuditLog.get(action="variation.updated", target_id=str(v.id))
    assert change.before["price_cents"] == 1990 and change.after["price_cents"] == 1700
    assert change.actor == f"account:{seller.account.id}" and change.tenant_id == seller.tenant.id
    await seller.post(f"/products/{product.id}/delete")
    product = await Product.get(id=product.id)
    assert product.deleted_at is not None and not product.active


async def test_coupon_crud_with_product_scope(portal):
    seller = await make_seller(portal)
    other = await make_seller(portal, "Outra")
    mine = await Product.create(tenant=seller.tenant, name="Netflix")
    theirs = await Product.create(tenant=other.tenant, name="Alheio")
    resp = await seller.post(
        "/coupons/new",
        {
            "code": "bemvindo10",
            "kind": "percent",
            "value": "10",
            "max_uses": "50",
            "active": "on",
            "expires_at": "2099-12-31",
            "products": [str(mine.id), str(theirs.id)],
        },
    )
    assert resp.status_code == 302
    coupon = await Coupon.get(tenant_id=seller.tenant.id)
    assert (coupon.code, coupon.value, coupon.max_uses) == ("BEMVINDO10", 1000, 50)
    assert [p.id for p in await coupon.products.all()] == [mine.id]  # the other store's dropped
    dup = await seller.post("/coupons/new", {"code": "BEMVINDO10", "kind": "fixed", "value": "5"})
    assert dup.status_code == 400 and "Já existe" in await dup.get_data(as_text=True)
    bad = await seller.post("/coupons/new", {"code": "a", "kind": "percent", "value": "150"})
    assert bad.status_code == 400
    await seller.post(
        f"/coupons/{coupon.id}/edit", {"code": "BEMVINDO10", "kind": "fixed", "value": "5,00"}
    )
    coupon = await Coupon.get(id=coupon.id)
    assert (str(coupon.kind), coupon.value, coupon.active) == ("fixed", 500, False)
    assert await coupon.products.all().count() == 0
    await seller.post(f"/coupons/{coupon.id}/delete")
    assert not await Coupon.filter(id=coupon.id).exists()

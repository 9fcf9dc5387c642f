"""Tenant isolation on every route, CSRF and Origin checks, security headers."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fleet.models import BotInstance
from shop.models import (
    AccessGrant,
    AdminRequest,
    AdminRequestKind,
    BlockedBuyer,
    Coupon,
    CouponKind,
    Order,
    Product,
    Rating,
    StockItem,
    Tenant,
    Variation,
    Withdrawal,
)
from tests.helpers.portal import make_seller

# Every URL variable of the portal and the model it names; a new one must be added here.
ID_KINDS = {
    "product_id",
    "variation_id",
    "coupon_id",
    "order_id",
    "withdrawal_id",
    "instance_id",
    "request_id",
    "tenant_id",
    "block_id",
    "access_id",
    "rating_id",
}


async def _store_a_objects(tenant: Tenant) -> dict[str, int]:
    instance = await BotInstance.create(tenant=tenant, token_enc="x", application_id="1")
    product = await Product.create(tenant=tenant, name="Netflix")
    variation = await Variation.create(
        tenant=tenant, product=product, name="1 mês", price_cents=1990
    )
    await StockItem.create(
        tenant=tenant, variation=variation, content_enc="x", content_hash=uuid.uuid4().hex
    )
    coupon = await Coupon.create(tenant=tenant, code="A10", kind=CouponKind.PERCENT, value=1000)
    order = await Order.create(
        tenant=tenant,
        instance=instance,
        product=product,
        variation=variation,
        interaction_id=uuid.uuid4().hex[:20],
        buyer_discord_id="1",
        quantity=1,
        unit_price_cents=1990,
        total_cents=1990,
        status="paid",
    )
    withdrawal = await Withdrawal.create(
        tenant=tenant, amount_cents=100, pix_key_type="email", pix_key="a@b.co"
    )
    req = await AdminRequest.create(kind=AdminRequestKind.SUPPORT, tenant=tenant, subject="help")
    block = await BlockedBuyer.create(
        tenant=tenant, discord_id="123456789012345678", created_by="test"
    )
    access = await AccessGrant.create(
        tenant=tenant,
        variation=variation,
        buyer_discord_id="1",
        guild_id="1",
        starts_at=order.created_at,
        ends_at=order.created_at + timedelta(days=30),
    )
    rating = await Rating.create(
        tenant=tenant,
        order=order,
        product=product,
        buyer_discord_id="1",
        stars=4,
        given_at=order.created_at,
    )
    return {
        "access_id": access.id,
        "rating_id": rating.id,
        "product_id": product.id,
        "variation_id": variation.id,
        "coupon_id": coupon.id,
        "order_id": order.id,
        "withdrawal_id": withdrawal.id,
        "instance_id": instance.id,
        "request_id": req.id,
        "tenant_id": tenant.id,
        "block_id": block.id,
    }


async def test_tenant_b_gets_404_for_every_tenant_a_id_on_every_route(portal, redis_url):
    a = await make_seller(portal, "Loja A")
    b = await make_seller(portal, "Loja B")
    ids = await _store_a_objects(a.tenant)
    checked = []
    for rule in portal.url_map.iter_rules():
        if not rule.arguments or rule.endpoint == "static":
            continue
        assert rule.arguments <= ID_KINDS, f"{rule.rule}: add its ids to this test"
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", str(ids[name]))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                resp = await b.client.get(path)
            else:
                resp = await b.post(
                    path,
                    {
                        "name": "x",
                        "price": "1,00",
                        "items": "k",
                        "code": "HACK",
                        "kind": "percent",
                        "value": "5",
                    },
                )
            assert resp.status_code == 404, (method, path, resp.status_code)
            checked.append((method, rule.rule))
    assert len(checked) >= 20
    # And nothing of A's changed.
    assert await Product.filter(id=ids["product_id"], deleted_at__isnull=True).exists()
    assert await Variation.filter(id=ids["variation_id"], deleted_at__isnull=True).exists()
    assert await Coupon.filter(id=ids["coupon_id"], code="A10").exists()
    assert await StockItem.filter(variation_id=ids["variation_id"]).count() == 1
    assert await BlockedBuyer.filter(id=ids["block_id"], tenant_id=a.tenant.id).exists()
    assert not await BlockedBuyer.filter(tenant_id=b.tenant.id).exists()
    assert await AccessGrant.filter(id=ids["access_id"], status="active").exists()
    assert await Rating.filter(id=ids["rating_id"], reply__isnull=True).exists()
    # The same routes work for A itself (the ids are real).
    status, _ = await a.text(f"/orders/{ids['order_id']}")
    assert status == 200


async def test_post_without_csrf_token_is_refused_and_changes_nothing(portal):
    seller = await make_seller(portal)
    for form in ({}, {"csrf_token": "forged"}):
        resp = await seller.client.post("/products/new", form={"name": "Nitro", **form})
        assert resp.status_code == 403
    resp = await seller.client.post("/settings", form={"name": "Hacked"})
    assert resp.status_code == 403
    assert await Product.filter(tenant_id=seller.tenant.id).count() == 0
    assert (await Tenant.get(id=seller.tenant.id)).name == "Loja"
    # With the token it works.
    resp = await seller.post(
        "/products/new", {"name": "Nitro", "max_per_order": "1", "active": "on"}
    )
    assert resp.status_code == 302
    assert await Product.filter(tenant_id=seller.tenant.id, name="Nitro").exists()


async def test_cross_origin_post_is_refused_even_with_a_token(portal):
    seller = await make_seller(portal)
    token = await seller.csrf()
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}):
        resp = await seller.client.post(
            "/products/new", headers=headers, form={"csrf_token": token, "name": "X"}
        )
        assert resp.status_code == 403
    ok = await seller.client.post(
        "/products/new",
        headers={"Origin": "http://127.0.0.1:3100"},
        form={"csrf_token": token, "name": "Ok", "max_per_order": "1"},
    )
    assert ok.status_code == 302
    assert await Product.filter(tenant_id=seller.tenant.id).count() == 1


async def test_webhook_route_is_exempt_from_csrf(portal):
    resp = await portal.test_client().post(
        "/webhooks/mercadopago?data.id=1&type=payment",
        json={"type": "payment", "data": {"id": "1"}},
        headers={"Origin": "https://api.mercadopago.com"},
    )
    assert resp.status_code != 403


async def test_security_headers_and_cookie_flags(portal):
    seller = await make_seller(portal)
    resp = await seller.client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    login = await portal.test_client().get("/auth/discord")
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http in this test


async def test_anonymous_visitor_is_sent_to_login(portal):
    client = portal.test_client()
    for path in ("/", "/products", "/orders/1", "/money"):
        resp = await client.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    resp = await client.get("/login")
    assert "Entrar com Discord" in await resp.get_data(as_text=True)

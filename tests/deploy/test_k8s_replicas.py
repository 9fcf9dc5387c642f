"""What deploy/kubernetes relies on in the web tier: two portal replicas behind one Service
act as one portal (a seller's session, CSRF token, logout and rate limits carry from one
replica to the other: they live in signed cookies, the database and Redis, not in a
process), and the probes the manifests name answer without a token."""

from __future__ import annotations

from shop.models import Product
from tests.helpers.admin import admin_settings
from tests.helpers.portal import make_seller, portal_settings


async def test_k8s_two_portal_replicas_share_sessions_csrf_logout_and_rate_limits(
    db, redis_url, tmp_path
):
    from web.portal import create_app

    settings = portal_settings(tmp_path, db, redis_url)
    one, two = create_app(settings), create_app(settings)
    async with one.test_app(), two.test_app():
        seller = await make_seller(one)
        token = await seller.csrf()  # issued by replica one, kept in the signed cookie
        other = two.test_client()
        other.cookie_jar = seller.client.cookie_jar  # the load balancer sends the next request
        resp = await other.post(
            "/products/new",
            form={"csrf_token": token, "name": "Nitro", "max_per_order": "1", "active": "on"},
        )
        assert resp.status_code == 302
        assert await Product.filter(tenant_id=seller.tenant.id, name="Nitro").exists()

        resp = await other.post("/logout", form={"csrf_token": token})
        assert resp.status_code == 302
        again = await seller.client.get("/settings")  # replica one: the session is revoked
        assert again.status_code == 302 and "/login" in again.headers["Location"]

        # 20 Discord logins per address per 5 minutes, counted across the replicas
        codes = []
        for n in range(21):
            client = (one if n % 2 else two).test_client()
            codes.append((await client.get("/auth/discord")).status_code)
        assert codes[:20] == [302] * 20 and codes[20] == 429


async def test_k8s_probes_answer_without_a_token_on_portal_and_admin(db, redis_url, tmp_path):
    from web.admin import create_app as admin_app
    from web.portal import create_app as portal_app

    apps = [
        portal_app(portal_settings(tmp_path, db, redis_url)),
        admin_app(admin_settings(tmp_path, db, redis_url)),
    ]
    for app in apps:
        async with app.test_app():
            client = app.test_client()
            live = await client.get("/livez")
            assert live.status_code == 200
            ready = await client.get("/readyz")
            body = await ready.get_json()
            assert ready.status_code == 200 and body["db"]["ok"] and body["redis"]["ok"]


async def test_k8s_readiness_fails_when_redis_is_gone_while_liveness_holds(db, redis_url, tmp_path):
    from web.portal import create_app

    app = create_app(portal_settings(tmp_path, db, "redis://127.0.0.1:9/0"))  # nothing there
    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/livez")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert (await ready.get_json())["redis"]["ok"] is False

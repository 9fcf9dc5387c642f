"""Ratings in the portal and the admin API (issue 17): per product with the average and
count; the seller replies once (CSRF, bounded, audited) and cannot delete; another store's
ratings are invisible; the settings are bounded; an operator deletes (admin API, audited) and
the rating leaves the portal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.models import AuditLog
from shop import ratings
from shop.models import Product, Rating, Tenant, Variation
from tests.helpers.admin import AUTH, admin_settings
from tests.helpers.portal import make_seller
from tests.shop.test_ratings import delivered


async def _rated(tenant: Tenant, stars: list[int], name: str = "Netflix") -> Product:
    product = await Product.create(tenant=tenant, name=name)
    variation = await Variation.create(
        tenant=tenant, product=product, name="1 mês", price_cents=990
    )
    store = {"tenant": tenant, "product": product, "variation": variation}
    for n in stars:
        order = await delivered(store, buyer=uuid.uuid4().hex[:18])
        await ratings.submit(tenant.id, order.id, order.buyer_discord_id, n, f"nota {n}")
    return product


async def test_ratings_page_shows_average_and_count_per_product(portal):
    seller = await make_seller(portal, "Loja A")
    product = await _rated(seller.tenant, [5, 4, 4])
    await _rated(seller.tenant, [], name="Spotify")
    status, page = await seller.text("/ratings")
    assert status == 200
    assert f'<tr data-product="{product.id}">' in page
    assert "★ 4.3" in page and '<td class="count">3</td>' in page
    status, page = await seller.text(f"/ratings/product/{product.id}")
    assert status == 200 and "★ 4.3 (3)" in page
    assert page.count('class="rating"') == 3 and "nota 5" in page


async def test_seller_replies_once_with_csrf_bounded_and_audited(portal):
    seller = await make_seller(portal, "Loja B")
    product = await _rated(seller.tenant, [2])
    rating = await Rating.get(product_id=product.id)
    no_csrf = await seller.client.post(f"/ratings/{rating.id}/reply", form={"reply": "x"})
    assert no_csrf.status_code == 403
    too_long = await seller.post(f"/ratings/{rating.id}/reply", {"reply": "y" * 501})
    assert too_long.status_code == 302 and (await Rating.get(id=rating.id)).reply is None
    resp = await seller.post(f"/ratings/{rating.id}/reply", {"reply": "Desculpe a demora!"})
    assert resp.status_code == 302
    again = await seller.post(f"/ratings/{rating.id}/reply", {"reply": "Outra resposta"})
    assert again.status_code == 302
    stored = await Rating.get(id=rating.id)
    assert (
        stored.reply == "Desculpe a demora!" and stored.replied_by == f"account:{seller.account.id}"
    )
    _, page = await seller.text(f"/ratings/product/{product.id}")
    assert "Desculpe a demora!" in page and "Outra resposta" not in page
    assert 'class="reply-form"' not in page  # answered: no second form
    assert "já tem uma resposta da loja" in page  # the refusal was flashed
    assert await AuditLog.filter(action="rating.replied", target_id=str(rating.id)).count() == 1
    # sellers cannot delete: there is no such route
    gone = await seller.post(f"/ratings/{rating.id}/delete", {})
    assert gone.status_code in (404, 405) and (await Rating.get(id=rating.id)).deleted_at is None


async def test_another_stores_ratings_are_invisible(portal):
    mine = await make_seller(portal, "Loja C")
    theirs = await make_seller(portal, "Loja D")
    product = await _rated(theirs.tenant, [1])
    rating = await Rating.get(product_id=product.id)
    assert (await mine.text(f"/ratings/product/{product.id}"))[0] == 404
    _, page = await mine.text("/ratings")
    assert "nota 1" not in page and f'data-product="{product.id}"' not in page
    resp = await mine.post(f"/ratings/{rating.id}/reply", {"reply": "intrusão"})
    assert resp.status_code == 404 and (await Rating.get(id=rating.id)).reply is None


@pytest.mark.parametrize(
    ("delay", "least", "ok"),
    [
        ("24", "5", True),
        ("0", "1", True),
        ("169", "5", False),
        ("2", "0", False),
        ("9" * 40, "3", False),
    ],
)
async def test_rating_settings_are_bounded_and_audited(portal, delay: str, least: str, ok: bool):
    seller = await make_seller(portal, "Loja E")
    form = {"rating_ask_delay_h": delay, "rating_min_count": least}
    resp = await seller.post("/ratings/settings", form)
    tenant = await Tenant.get(id=seller.tenant.id)
    if ok:
        assert resp.status_code == 302
        assert (tenant.rating_ask_delay_h, tenant.rating_min_count) == (int(delay), int(least))
        assert await AuditLog.filter(action="tenant.ratings_updated").count() == 1
    else:
        assert resp.status_code == 400
        assert (tenant.rating_ask_delay_h, tenant.rating_min_count) == (0, 3)


async def test_operator_deletes_a_rating_through_the_admin_api_audited(
    portal, db, redis_url, tmp_path
):
    from web.admin import create_app

    seller = await make_seller(portal, "Loja F")
    product = await _rated(seller.tenant, [1, 5])
    bad = await Rating.get(product_id=product.id, stars=1)
    admin = create_app(admin_settings(tmp_path, db, redis_url))
    async with admin.test_app():
        client: Any = admin.test_client()
        no_reason = await client.post(f"/api/ratings/{bad.id}/delete", json={}, headers=AUTH)
        assert no_reason.status_code == 400
        resp = await client.post(
            f"/api/ratings/{bad.id}/delete", json={"reason": "ofensivo"}, headers=AUTH
        )
        assert resp.status_code == 200 and (await resp.get_json())["deleted_at"]
        again = await client.post(
            f"/api/ratings/{bad.id}/delete", json={"reason": "ofensivo"}, headers=AUTH
        )
        assert again.status_code == 409
        missing = await client.post(
            "/api/ratings/999999/delete", json={"reason": "x"}, headers=AUTH
        )
        assert missing.status_code == 404
        listed = await (await client.get("/api/ratings?deleted=true", headers=AUTH)).get_json()
        assert [r["id"] for r in listed["items"]] == [bad.id]
        entry = await AuditLog.get(action="rating.deleted")
        assert entry.actor.startswith("admin:") and entry.after == {"reason": "ofensivo"}
        _, page = await seller.text(f"/ratings/product/{product.id}")
        assert "nota 1" not in page and "nota 5" in page and "★ 5.0 (1)" in page

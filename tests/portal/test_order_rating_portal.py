"""The order page shows the buyer's rating (issue 17): stars, comment and the store's reply,
a link to reply when there is none; nothing for an unrated order or a rating an operator
deleted; another store's seller sees neither the order nor its rating."""

from __future__ import annotations

from datetime import UTC, datetime

from shop import ratings
from shop.models import Rating
from tests.helpers.portal import make_seller
from tests.portal.test_ratings_portal import _rated


async def test_order_page_shows_stars_comment_and_reply(portal):
    seller = await make_seller(portal, "Loja A")
    product = await _rated(seller.tenant, [4])
    rating = await Rating.get(product_id=product.id)
    status, page = await seller.text(f"/orders/{rating.order_id}")
    assert status == 200 and 'id="order-rating"' in page
    block = page.split('id="order-rating"')[1].split("</article>")[0]
    assert "★★★★☆" in block and "nota 4" in block
    assert f"/ratings/product/{product.id}#rating-{rating.id}" in block  # not answered yet
    await ratings.reply(rating, "Obrigado pela nota!", "account:1")
    _, page = await seller.text(f"/orders/{rating.order_id}")
    block = page.split('id="order-rating"')[1].split("</article>")[0]
    assert "Obrigado pela nota!" in block and 'id="rating-reply-link"' not in block


async def test_unrated_deleted_and_foreign_orders_show_no_rating(portal):
    seller = await make_seller(portal, "Loja B")
    product = await _rated(seller.tenant, [2])
    rating = await Rating.get(product_id=product.id)
    stranger = await make_seller(portal, "Outra")
    status, page = await stranger.text(f"/orders/{rating.order_id}")
    assert status == 404 and "nota 2" not in page
    await Rating.filter(id=rating.id).update(deleted_at=datetime.now(UTC), deleted_by="op")
    status, page = await seller.text(f"/orders/{rating.order_id}")
    assert status == 200 and 'id="order-rating"' not in page and "nota 2" not in page

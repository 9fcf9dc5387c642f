"""The store's ratings (issue 17): average and count per product, each product's ratings with
the seller's one public reply, and the rating settings (ask delay, panel minimum). Sellers
cannot delete ratings; operators can (`web.admin.ratings`). Writes are `shop.ratings`'."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from shop import inputs, ratings
from shop.models import Product, Rating
from shop.models.ratings import REPLY_MAX
from web.portal.context import actor, owned, render, say, store_required

bp = Blueprint("ratings", __name__)


def _settings_form(form: Any = None) -> dict[str, Any]:
    if form is not None:
        return {k: form.get(k, "") for k in ("rating_ask_delay_h", "rating_min_count")}
    return {
        "rating_ask_delay_h": g.tenant.rating_ask_delay_h,
        "rating_min_count": g.tenant.rating_min_count,
    }


async def _overview(status: int = 200, form: Any = None, errors: Any = None) -> Any:
    products = await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True).order_by("id")
    found = await ratings.summaries(g.tenant.id)
    rows = [{"product": p, "summary": found.get(p.id)} for p in products]
    return await render(
        "portal/ratings.html",
        status=status,
        rows=rows,
        form=_settings_form(form),
        errors=errors or {},
    )


@bp.get("/ratings")
@store_required
async def overview():
    return await _overview()


@bp.post("/ratings/settings")
@store_required
async def save_settings():
    form = await request.form
    errors: dict[str, str] = {}
    values: dict[str, int] = {}
    bounds = {
        "rating_ask_delay_h": (0, ratings.ASK_DELAY_MAX_H),
        "rating_min_count": (1, ratings.MIN_COUNT_MAX),
    }
    for name, (lo, hi) in bounds.items():
        try:
            values[name] = inputs.parse_quantity((form.get(name) or "").strip(), lo=lo, hi=hi)
        except inputs.InvalidInput as exc:
            errors[name] = exc.message(g.locale)
    if errors:
        return await _overview(400, form, errors)
    await ratings.save_settings(
        g.tenant, values["rating_ask_delay_h"], values["rating_min_count"], actor()
    )
    await say("ratings.portal.saved")
    return redirect(url_for("ratings.overview"))


@bp.get("/ratings/product/<int:product_id>")
@store_required
async def product(product_id: int):
    item = await owned(Product, product_id)
    found = (await ratings.summaries(g.tenant.id, [item.id])).get(item.id)
    return await render(
        "portal/ratings_product.html",
        product=item,
        summary=found,
        ratings=await ratings.product_ratings(g.tenant.id, item.id),
        stars=ratings.stars_text,
        reply_max=REPLY_MAX,
    )


@bp.post("/ratings/<int:rating_id>/reply")
@store_required
async def reply(rating_id: int):
    rating = await owned(Rating, rating_id, deleted_at__isnull=True)
    form = await request.form
    text = form.get("reply") or ""
    try:
        if len(text) > REPLY_MAX * 2:  # bounded before anything else looks at it
            raise ratings.InvalidRating("reply too long")
        await ratings.reply(rating, text, actor())
    except ratings.RatingError as exc:
        await say(exc.message_key, "error")
    else:
        await say("ratings.portal.replied")
    return redirect(url_for("ratings.product", product_id=rating.product_id))

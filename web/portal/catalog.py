"""Catalog: products and their variations (name, description, image, price, limit, active).

The views parse and render; `shop.catalog` validates, writes and audits.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from shop import catalog, stock
from shop.catalog import cents_to_input
from shop.models import Product, Variation
from web.portal.context import actor, form_errors, owned, render, say, store_required
from web.portal.variation_access import access_context

bp = Blueprint("catalog", __name__)


@bp.get("/products")
@store_required
async def products():
    items = (
        await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True)
        .order_by("name")
        .prefetch_related("variations")
    )
    variation_ids = [v.id for p in items for v in p.variations if v.deleted_at is None]
    counts = await stock.counts(variation_ids)
    return await render(
        "portal/products.html",
        products=items,
        counts=counts,
        threshold=g.tenant.low_stock_threshold,
    )


@bp.route("/products/new", methods=["GET", "POST"])
@store_required
async def new_product():
    if request.method == "GET":
        return await render(
            "portal/product_form.html",
            product=None,
            form={"active": "on", "max_per_order": "10"},
            errors={},
        )
    form = await request.form
    product, errors = await catalog.create_product(g.tenant.id, form, actor())
    if product is None:
        return await render(
            "portal/product_form.html",
            status=400,
            product=None,
            form=form,
            errors=form_errors(errors),
        )
    await say("portal.product.created", name=product.name)
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_product(product_id: int):
    product = await owned(Product, product_id, deleted_at__isnull=True)
    variations = await Variation.filter(product_id=product.id, deleted_at__isnull=True).order_by(
        "id"
    )
    counts = await stock.counts(v.id for v in variations)
    page: dict[str, Any] = {
        "product": product,
        "variations": variations,
        "counts": counts,
        "price_input": cents_to_input,
        "vform": {},
        "verrors": {},
    }
    if request.method == "GET":
        form = {
            "name": product.name,
            "description": product.description,
            "image_url": product.image_url or "",
            "max_per_order": product.max_per_order,
            "active": "on" if product.active else "",
        }
        return await render("portal/product_form.html", form=form, errors={}, **page)
    form = await request.form
    if errors := await catalog.save_product(product, form, actor()):
        return await render(
            "portal/product_form.html", status=400, form=form, errors=form_errors(errors), **page
        )
    await say("portal.saved")
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.post("/products/<int:product_id>/delete")
@store_required
async def delete_product(product_id: int):
    """Soft delete: past orders keep pointing at it; the bot stops offering it."""
    product = await owned(Product, product_id, deleted_at__isnull=True)
    await catalog.delete_product(product, actor())
    await say("portal.product.deleted", name=product.name)
    return redirect(url_for("catalog.products"))


@bp.post("/products/<int:product_id>/variations")
@store_required
async def add_variation(product_id: int):
    product = await owned(Product, product_id, deleted_at__isnull=True)
    form = await request.form
    variation, errors = await catalog.create_variation(product, form, actor())
    if variation is None:
        variations = await Variation.filter(product_id=product.id, deleted_at__isnull=True)
        product_form = {
            "name": product.name,
            "description": product.description,
            "image_url": product.image_url or "",
            "max_per_order": product.max_per_order,
            "active": "on" if product.active else "",
        }
        return await render(
            "portal/product_form.html",
            status=400,
            product=product,
            variations=variations,
            counts=await stock.counts(v.id for v in variations),
            price_input=cents_to_input,
            form=product_form,
            errors={},
            vform=form,
            verrors=form_errors(errors),
        )
    await say("portal.variation.created", name=variation.name)
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.route("/variations/<int:variation_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_variation(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    if request.method == "GET":
        form = {
            "name": variation.name,
            "price": cents_to_input(variation.price_cents),
            "active": "on" if variation.active else "",
        }
        return await render(
            "portal/variation_form.html",
            variation=variation,
            form=form,
            errors={},
            **await access_context(variation),
        )
    form = await request.form
    if errors := await catalog.save_variation(variation, form, actor()):
        return await render(
            "portal/variation_form.html",
            status=400,
            variation=variation,
            form=form,
            errors=form_errors(errors),
            **await access_context(variation),
        )
    await say("portal.saved")
    return redirect(url_for("catalog.edit_product", product_id=variation.product_id))


@bp.post("/variations/<int:variation_id>/delete")
@store_required
async def delete_variation(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    await catalog.delete_variation(variation, actor())
    await say("portal.variation.deleted", name=variation.name)
    return redirect(url_for("catalog.edit_product", product_id=variation.product_id))

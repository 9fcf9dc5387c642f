"""Catalog: products and their variations (name, description, image, price, limit, active)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from core import audit
from shop import stock
from shop.catalog import cents_to_input, clean_product, clean_variation
from shop.models import Product, Variation
from web.portal.context import actor, form_errors, owned, render, say, store_required

bp = Blueprint("catalog", __name__)

MAX_PRODUCTS = 500
MAX_VARIATIONS = 50


def _snapshot(obj: Product | Variation) -> dict[str, Any]:
    fields = ("name", "active", "price_cents", "max_per_order", "image_url")
    return {f: getattr(obj, f) for f in fields if hasattr(obj, f)}


async def _save_audited(obj: Any, values: dict[str, Any], kind: str) -> None:
    """Apply a validated edit, audit before/after, and tell the seller it was saved."""
    before = _snapshot(obj)
    obj.update_from_dict(values)
    await obj.save()
    await audit.record(actor(), f"{kind}.updated", kind, obj.id, tenant_id=g.tenant.id,
                       before=before, after=_snapshot(obj))
    await say("portal.saved")


@bp.get("/products")
@store_required
async def products():  # type: ignore[no-untyped-def]
    items = await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True) \
        .order_by("name").prefetch_related("variations")
    variation_ids = [v.id for p in items for v in p.variations if v.deleted_at is None]
    counts = await stock.counts(variation_ids)
    return await render("portal/products.html", products=items, counts=counts,
                        threshold=g.tenant.low_stock_threshold)


@bp.route("/products/new", methods=["GET", "POST"])
@store_required
async def new_product():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return await render("portal/product_form.html", product=None,
                            form={"active": "on", "max_per_order": "10"}, errors={})
    form = await request.form
    values, errors = clean_product(form)
    if await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True).count() \
            >= MAX_PRODUCTS:
        errors["name"] = ("portal.error.too_many", {"max": MAX_PRODUCTS})
    if errors:
        return await render("portal/product_form.html", status=400, product=None, form=form,
                            errors=form_errors(errors))
    product = await Product.create(tenant_id=g.tenant.id, **values)
    await audit.record(actor(), "product.created", "product", product.id,
                       tenant_id=g.tenant.id, after=_snapshot(product))
    await say("portal.product.created", name=product.name)
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.route("/products/<int:product_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_product(product_id: int):  # type: ignore[no-untyped-def]
    product = await owned(Product, product_id, deleted_at__isnull=True)
    variations = await Variation.filter(product_id=product.id, deleted_at__isnull=True) \
        .order_by("id")
    counts = await stock.counts(v.id for v in variations)
    page = {"product": product, "variations": variations, "counts": counts,
            "price_input": cents_to_input, "vform": {}, "verrors": {}}
    if request.method == "GET":
        form = {"name": product.name, "description": product.description,
                "image_url": product.image_url or "", "max_per_order": product.max_per_order,
                "active": "on" if product.active else ""}
        return await render("portal/product_form.html", form=form, errors={}, **page)
    form = await request.form
    values, errors = clean_product(form)
    if errors:
        return await render("portal/product_form.html", status=400, form=form,
                            errors=form_errors(errors), **page)
    await _save_audited(product, values, "product")
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.post("/products/<int:product_id>/delete")
@store_required
async def delete_product(product_id: int):  # type: ignore[no-untyped-def]
    """Soft delete: past orders keep pointing at it; the bot stops offering it."""
    product = await owned(Product, product_id, deleted_at__isnull=True)
    now = datetime.now(UTC)
    product.deleted_at = now
    product.active = False
    await product.save(update_fields=["deleted_at", "active", "updated_at"])
    await Variation.filter(product_id=product.id, deleted_at__isnull=True) \
        .update(deleted_at=now, active=False)
    await audit.record(actor(), "product.deleted", "product", product.id,
                       tenant_id=g.tenant.id, before=_snapshot(product))
    await say("portal.product.deleted", name=product.name)
    return redirect(url_for("catalog.products"))


@bp.post("/products/<int:product_id>/variations")
@store_required
async def add_variation(product_id: int):  # type: ignore[no-untyped-def]
    product = await owned(Product, product_id, deleted_at__isnull=True)
    form = await request.form
    values, errors = clean_variation(form)
    if await Variation.filter(product_id=product.id, deleted_at__isnull=True).count() \
            >= MAX_VARIATIONS:
        errors["name"] = ("portal.error.too_many", {"max": MAX_VARIATIONS})
    if errors:
        variations = await Variation.filter(product_id=product.id, deleted_at__isnull=True)
        product_form = {"name": product.name, "description": product.description,
                        "image_url": product.image_url or "",
                        "max_per_order": product.max_per_order,
                        "active": "on" if product.active else ""}
        return await render("portal/product_form.html", status=400, product=product,
                            variations=variations,
                            counts=await stock.counts(v.id for v in variations),
                            price_input=cents_to_input, form=product_form, errors={},
                            vform=form, verrors=form_errors(errors))
    variation = await Variation.create(tenant_id=g.tenant.id, product_id=product.id, **values)
    await audit.record(actor(), "variation.created", "variation", variation.id,
                       tenant_id=g.tenant.id, after=_snapshot(variation))
    await say("portal.variation.created", name=variation.name)
    return redirect(url_for("catalog.edit_product", product_id=product.id))


@bp.route("/variations/<int:variation_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_variation(variation_id: int):  # type: ignore[no-untyped-def]
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    if request.method == "GET":
        form = {"name": variation.name, "price": cents_to_input(variation.price_cents),
                "active": "on" if variation.active else ""}
        return await render("portal/variation_form.html", variation=variation, form=form,
                            errors={})
    form = await request.form
    values, errors = clean_variation(form)
    if errors:
        return await render("portal/variation_form.html", status=400, variation=variation,
                            form=form, errors=form_errors(errors))
    await _save_audited(variation, values, "variation")
    return redirect(url_for("catalog.edit_product", product_id=variation.product_id))


@bp.post("/variations/<int:variation_id>/delete")
@store_required
async def delete_variation(variation_id: int):  # type: ignore[no-untyped-def]
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    variation.deleted_at = datetime.now(UTC)
    variation.active = False
    await variation.save(update_fields=["deleted_at", "active", "updated_at"])
    await audit.record(actor(), "variation.deleted", "variation", variation.id,
                       tenant_id=g.tenant.id, before=_snapshot(variation))
    await say("portal.variation.deleted", name=variation.name)
    return redirect(url_for("catalog.edit_product", product_id=variation.product_id))

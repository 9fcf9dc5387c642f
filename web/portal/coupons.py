"""Coupons: percent or fixed discounts, with expiry, use limit, minimum order, product scope."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for
from tortoise.transactions import in_transaction

from core import audit
from shop import inputs
from shop.catalog import cents_to_input, clean_coupon
from shop.models import Coupon, CouponKind, Product
from web.portal.context import actor, form_errors, owned, render, say, store_required

bp = Blueprint("coupons", __name__)

MAX_COUPONS = 500
MAX_COUPON_PRODUCTS = 1000  # checkboxes one coupon form may send


def _snapshot(c: Coupon) -> dict[str, Any]:
    return {"code": c.code, "kind": str(c.kind), "value": c.value, "active": c.active,
            "max_uses": c.max_uses, "min_order_cents": c.min_order_cents,
            "expires_at": c.expires_at}


def _form_of(c: Coupon, product_ids: list[int]) -> dict[str, Any]:
    value = cents_to_input(c.value)
    if c.kind == CouponKind.PERCENT and value.endswith(",00"):
        value = value[:-3]
    return {"code": c.code, "kind": str(c.kind), "value": value,
            "min_order": cents_to_input(c.min_order_cents) if c.min_order_cents else "",
            "max_uses": c.max_uses or "", "active": "on" if c.active else "",
            "expires_at": c.expires_at.strftime("%Y-%m-%d") if c.expires_at else "",
            "products": product_ids}


async def _store_products() -> list[Product]:
    return await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True).order_by("name")


async def _chosen_products(form: Any) -> list[Product]:
    """Only this store's products count; another store's ids are silently dropped."""
    ids = inputs.parse_ids(form.getlist("products"), limit=MAX_COUPON_PRODUCTS)
    if not ids:
        return []
    return await Product.filter(tenant_id=g.tenant.id, id__in=ids, deleted_at__isnull=True)


@bp.get("/coupons")
@store_required
async def coupons():  # type: ignore[no-untyped-def]
    items = await Coupon.filter(tenant_id=g.tenant.id).order_by("code") \
        .prefetch_related("products")
    return await render("portal/coupons.html", coupons=items)


async def _form_page(coupon: Coupon | None, form: Any, errors: dict[str, str],
                     status: int = 200):  # type: ignore[no-untyped-def]
    return await render("portal/coupon_form.html", status=status, coupon=coupon, form=form,
                        errors=errors, products=await _store_products())


@bp.route("/coupons/new", methods=["GET", "POST"])
@store_required
async def new_coupon():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return await _form_page(None, {"active": "on", "kind": "percent", "products": []}, {})
    form = await request.form
    values, errors = clean_coupon(form)
    if not errors and await Coupon.filter(tenant_id=g.tenant.id, code=values["code"]).exists():
        errors["code"] = ("portal.coupon.code_taken", {})
    if await Coupon.filter(tenant_id=g.tenant.id).count() >= MAX_COUPONS:
        errors["code"] = ("portal.error.too_many", {"max": MAX_COUPONS})
    if errors:
        return await _form_page(None, _sticky(form), form_errors(errors), 400)
    chosen = await _chosen_products(form)
    async with in_transaction() as conn:
        coupon = await Coupon.create(tenant_id=g.tenant.id, using_db=conn, **values)
        if chosen:
            await coupon.products.add(*chosen, using_db=conn)
        await audit.record(actor(), "coupon.created", "coupon", coupon.id,
                           tenant_id=g.tenant.id, after=_snapshot(coupon), using_db=conn)
    await say("portal.coupon.created", code=coupon.code)
    return redirect(url_for("coupons.coupons"))


def _sticky(form: Any) -> dict[str, Any]:
    data = dict(form)
    data["products"] = inputs.parse_ids(form.getlist("products"), limit=MAX_COUPON_PRODUCTS)
    return data


@bp.route("/coupons/<int:coupon_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_coupon(coupon_id: int):  # type: ignore[no-untyped-def]
    coupon = await owned(Coupon, coupon_id)
    if request.method == "GET":
        ids = [p.id for p in await coupon.products.all()]
        return await _form_page(coupon, _form_of(coupon, ids), {})
    form = await request.form
    values, errors = clean_coupon(form)
    if not errors and await Coupon.filter(tenant_id=g.tenant.id, code=values["code"]) \
            .exclude(id=coupon.id).exists():
        errors["code"] = ("portal.coupon.code_taken", {})
    if errors:
        return await _form_page(coupon, _sticky(form), form_errors(errors), 400)
    before = _snapshot(coupon)
    chosen = await _chosen_products(form)
    async with in_transaction() as conn:
        coupon.update_from_dict(values)
        await coupon.save(using_db=conn)
        await coupon.products.clear(using_db=conn)
        if chosen:
            await coupon.products.add(*chosen, using_db=conn)
        await audit.record(actor(), "coupon.updated", "coupon", coupon.id,
                           tenant_id=g.tenant.id, before=before, after=_snapshot(coupon),
                           using_db=conn)
    await say("portal.saved")
    return redirect(url_for("coupons.coupons"))


@bp.post("/coupons/<int:coupon_id>/delete")
@store_required
async def delete_coupon(coupon_id: int):  # type: ignore[no-untyped-def]
    """Orders keep their discount (coupon FK is SET NULL)."""
    coupon = await owned(Coupon, coupon_id)
    before = _snapshot(coupon)
    await coupon.delete()
    await audit.record(actor(), "coupon.deleted", "coupon", coupon_id, tenant_id=g.tenant.id,
                       before=before)
    await say("portal.coupon.deleted", code=before["code"])
    return redirect(url_for("coupons.coupons"))

"""Coupons: percent or fixed discounts, with expiry, use limit, minimum order, product scope.

The views parse and render; `shop.coupons` validates, writes and audits.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from shop import coupons as coupon_service
from shop.catalog import cents_to_input
from shop.models import Coupon, CouponKind, Product
from web.portal.context import actor, form_errors, owned, render, say, store_required

bp = Blueprint("coupons", __name__)


def _form_of(c: Coupon, product_ids: list[int]) -> dict[str, Any]:
    value = cents_to_input(c.value)
    if c.kind == CouponKind.PERCENT and value.endswith(",00"):
        value = value[:-3]
    return {
        "code": c.code,
        "kind": str(c.kind),
        "value": value,
        "min_order": cents_to_input(c.min_order_cents) if c.min_order_cents else "",
        "max_uses": c.max_uses or "",
        "active": "on" if c.active else "",
        "expires_at": c.expires_at.strftime("%Y-%m-%d") if c.expires_at else "",
        "products": product_ids,
    }


async def _store_products() -> list[Product]:
    return await Product.filter(tenant_id=g.tenant.id, deleted_at__isnull=True).order_by("name")


@bp.get("/coupons")
@store_required
async def coupons():
    items = await Coupon.filter(tenant_id=g.tenant.id).order_by("code").prefetch_related("products")
    return await render("portal/coupons.html", coupons=items)


async def _form_page(coupon: Coupon | None, form: Any, errors: dict[str, str], status: int = 200):
    return await render(
        "portal/coupon_form.html",
        status=status,
        coupon=coupon,
        form=form,
        errors=errors,
        products=await _store_products(),
    )


@bp.route("/coupons/new", methods=["GET", "POST"])
@store_required
async def new_coupon():
    if request.method == "GET":
        return await _form_page(None, {"active": "on", "kind": "percent", "products": []}, {})
    form = await request.form
    coupon, errors = await coupon_service.create_coupon(
        g.tenant.id, form, form.getlist("products"), actor()
    )
    if coupon is None:
        return await _form_page(None, _sticky(form), form_errors(errors), 400)
    await say("portal.coupon.created", code=coupon.code)
    return redirect(url_for("coupons.coupons"))


def _sticky(form: Any) -> dict[str, Any]:
    data = dict(form)
    data["products"] = coupon_service.parse_product_ids(form.getlist("products"))
    return data


@bp.route("/coupons/<int:coupon_id>/edit", methods=["GET", "POST"])
@store_required
async def edit_coupon(coupon_id: int):
    coupon = await owned(Coupon, coupon_id)
    if request.method == "GET":
        ids = [p.id for p in await coupon.products.all()]
        return await _form_page(coupon, _form_of(coupon, ids), {})
    form = await request.form
    if errors := await coupon_service.save_coupon(coupon, form, form.getlist("products"), actor()):
        return await _form_page(coupon, _sticky(form), form_errors(errors), 400)
    await say("portal.saved")
    return redirect(url_for("coupons.coupons"))


@bp.post("/coupons/<int:coupon_id>/delete")
@store_required
async def delete_coupon(coupon_id: int):
    """Orders keep their discount (coupon FK is SET NULL)."""
    coupon = await owned(Coupon, coupon_id)
    code = coupon.code
    await coupon_service.delete_coupon(coupon, actor())
    await say("portal.coupon.deleted", code=code)
    return redirect(url_for("coupons.coupons"))

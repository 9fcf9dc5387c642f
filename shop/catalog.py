"""Catalog rules and writes: products, variations and coupons from a form (no HTTP here).

Each `clean_*` takes a plain mapping of strings and returns `(values, errors)`: `values` is
ready for the model, `errors` maps a field name to an i18n key (plus params) for the message.
The `create_*`/`save_*`/`delete_*` services validate, write and audit, so the portal, the admin
API and staff commands share them; callers pass objects already loaded with their store's id.
Coupons' writes are in `shop.coupons`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from core import audit
from shop import inputs
from shop.models import CouponKind, Product, Variation

NAME_MAX = 100
DESCRIPTION_MAX = 2000
IMAGE_URL_MAX = 500
PRICE_MAX_CENTS = 100_000_00  # R$ 100.000,00 per unit
MAX_PER_ORDER_MAX = 100
MIN_ORDER_MAX_CENTS = PRICE_MAX_CENTS * MAX_PER_ORDER_MAX  # a bigger minimum is never met
COUPON_CODE_RE = re.compile(r"^[A-Z0-9_-]{3,40}$")
SNOWFLAKE_RE = re.compile(r"^\d{15,21}$")
MAX_PRODUCTS = 500  # per store
MAX_VARIATIONS = 50  # per product

Errors = dict[str, tuple[str, dict[str, Any]]]


def parse_money(raw: str | None) -> int | None:
    """'12,50' / '12.50' / 'R$ 1.234,56' -> centavos; None when it is not an amount.

    Bounded (`shop.inputs`): no exponent or sign, at most 2 decimals, at most R$ 1 bilhão."""
    try:
        return inputs.parse_money(raw or "")
    except inputs.InvalidInput:
        return None


def cents_to_input(cents: int | None) -> str:
    """Centavos as the text a Brazilian types in a price field: 1250 -> '12,50'."""
    if cents is None:
        return ""
    return f"{cents // 100},{cents % 100:02d}"


def _text(form: Mapping[str, str], name: str, errors: Errors, *, required: bool, limit: int) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        errors[name] = ("portal.error.required", {})
    elif len(value) > limit:
        errors[name] = ("portal.error.too_long", {"max": limit})
    return value


def _int(
    form: Mapping[str, str], name: str, errors: Errors, lo: int, hi: int, default: int | None = None
) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        if default is None:
            errors[name] = ("portal.error.required", {})
        return default
    try:
        return inputs.parse_quantity(raw, lo=lo, hi=hi)
    except inputs.InvalidInput as refusal:
        if refusal.reason in ("too_small", "too_large"):
            errors[name] = ("portal.error.between", {"lo": lo, "hi": hi})
        else:
            errors[name] = ("portal.error.whole_number", {})
        return default


def _checked(form: Mapping[str, str], name: str) -> bool:
    return (form.get(name) or "") in ("1", "on", "true", "yes")


def clean_product(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    values: dict[str, Any] = {
        "name": _text(form, "name", errors, required=True, limit=NAME_MAX),
        "description": _text(form, "description", errors, required=False, limit=DESCRIPTION_MAX),
        "max_per_order": _int(form, "max_per_order", errors, 1, MAX_PER_ORDER_MAX, 10),
        "active": _checked(form, "active"),
    }
    image = _text(form, "image_url", errors, required=False, limit=IMAGE_URL_MAX)
    if image:
        parsed = urlparse(image)
        if parsed.scheme != "https" or not parsed.netloc:
            errors["image_url"] = ("portal.error.https_url", {})
    values["image_url"] = image or None
    return values, errors


def clean_variation(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    values: dict[str, Any] = {
        "name": _text(form, "name", errors, required=True, limit=NAME_MAX),
        "active": _checked(form, "active") if "active_present" in form else True,
    }
    price = parse_money(form.get("price"))
    if price is None:
        errors["price"] = ("portal.error.price", {})
    elif not 0 < price <= PRICE_MAX_CENTS:
        errors["price"] = ("portal.error.price_range", {"max": "R$ 100.000,00"})
    values["price_cents"] = price
    return values, errors


def clean_coupon(form: Mapping[str, str]) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    code = (form.get("code") or "").strip().upper()
    if not COUPON_CODE_RE.match(code):
        errors["code"] = ("portal.error.coupon_code", {})
    kind = form.get("kind") or ""
    values: dict[str, Any] = {"code": code, "active": _checked(form, "active")}
    if kind not in {k.value for k in CouponKind}:
        errors["kind"] = ("portal.error.required", {})
    else:
        values["kind"] = CouponKind(kind)
    values["value"] = _coupon_value(form, kind, errors)
    min_order = parse_money(form.get("min_order")) if (form.get("min_order") or "").strip() else 0
    if min_order is None or not 0 <= min_order <= MIN_ORDER_MAX_CENTS:
        errors["min_order"] = ("portal.error.price", {})
    values["min_order_cents"] = min_order or 0
    max_uses = (form.get("max_uses") or "").strip()
    values["max_uses"] = _int(form, "max_uses", errors, 1, 1_000_000) if max_uses else None
    values["expires_at"] = _date(form, "expires_at", errors)
    return values, errors


def _coupon_value(form: Mapping[str, str], kind: str, errors: Errors) -> int | None:
    raw = form.get("value")
    if kind == CouponKind.PERCENT:
        try:  # same syntax as money: '10' or '12,5' percent -> basis points
            amount: int | None = inputs.parse_percent(raw or "")
        except inputs.InvalidInput:
            amount = None
        if amount is None or not 0 < amount <= 100_00:
            errors["value"] = ("portal.error.percent", {})
        return amount
    amount = parse_money(raw)
    if amount is None or not 0 < amount <= PRICE_MAX_CENTS:
        errors["value"] = ("portal.error.price", {})
    return amount


def _date(form: Mapping[str, str], name: str, errors: Errors) -> datetime | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        errors[name] = ("portal.error.date", {})
        return None
    return day.replace(hour=23, minute=59, second=59, tzinfo=UTC)


def clean_snowflake(raw: str | None, name: str, errors: Errors) -> str | None:
    """An optional Discord id (channel, role, guild)."""
    value = (raw or "").strip()
    if not value:
        return None
    if not SNOWFLAKE_RE.match(value):
        errors[name] = ("portal.error.snowflake", {})
    return value


# --- writes: products and variations -------------------------------------------------------


def snapshot(obj: Product | Variation) -> dict[str, Any]:
    """What the audit log keeps of a product or variation."""
    fields = ("name", "active", "price_cents", "max_per_order", "image_url")
    return {f: getattr(obj, f) for f in fields if hasattr(obj, f)}


async def _update_audited(
    obj: Product | Variation, values: dict[str, Any], kind: str, actor: str
) -> None:
    """Apply a validated edit and audit it, before and after."""
    before = snapshot(obj)
    obj.update_from_dict(values)
    await obj.save()
    await audit.record(
        actor,
        f"{kind}.updated",
        kind,
        obj.id,
        tenant_id=obj.tenant_id,
        before=before,
        after=snapshot(obj),
    )


async def create_product(
    tenant_id: int, form: Mapping[str, str], actor: str
) -> tuple[Product | None, Errors]:
    """Add a product to the store (at most `MAX_PRODUCTS`); `(None, errors)` if refused."""
    values, errors = clean_product(form)
    if await Product.filter(tenant_id=tenant_id, deleted_at__isnull=True).count() >= MAX_PRODUCTS:
        errors["name"] = ("portal.error.too_many", {"max": MAX_PRODUCTS})
    if errors:
        return None, errors
    product = await Product.create(tenant_id=tenant_id, **values)
    await audit.record(
        actor,
        "product.created",
        "product",
        product.id,
        tenant_id=tenant_id,
        after=snapshot(product),
    )
    return product, {}


async def save_product(product: Product, form: Mapping[str, str], actor: str) -> Errors:
    """Edit a product from a form; the errors, empty when it was saved."""
    values, errors = clean_product(form)
    if not errors:
        await _update_audited(product, values, "product", actor)
    return errors


async def delete_product(product: Product, actor: str) -> None:
    """Soft delete, with its variations: past orders keep pointing at it; bots stop offering it."""
    now = datetime.now(UTC)
    product.deleted_at = now
    product.active = False
    await product.save(update_fields=["deleted_at", "active", "updated_at"])
    await Variation.filter(product_id=product.id, deleted_at__isnull=True).update(
        deleted_at=now, active=False
    )
    await audit.record(
        actor,
        "product.deleted",
        "product",
        product.id,
        tenant_id=product.tenant_id,
        before=snapshot(product),
    )


async def create_variation(
    product: Product, form: Mapping[str, str], actor: str
) -> tuple[Variation | None, Errors]:
    """Add a variation to a product (at most `MAX_VARIATIONS`); `(None, errors)` if refused."""
    values, errors = clean_variation(form)
    if (
        await Variation.filter(product_id=product.id, deleted_at__isnull=True).count()
        >= MAX_VARIATIONS
    ):
        errors["name"] = ("portal.error.too_many", {"max": MAX_VARIATIONS})
    if errors:
        return None, errors
    variation = await Variation.create(tenant_id=product.tenant_id, product_id=product.id, **values)
    await audit.record(
        actor,
        "variation.created",
        "variation",
        variation.id,
        tenant_id=product.tenant_id,
        after=snapshot(variation),
    )
    return variation, {}


async def save_variation(variation: Variation, form: Mapping[str, str], actor: str) -> Errors:
    """Edit a variation from a form; the errors, empty when it was saved."""
    values, errors = clean_variation(form)
    if not errors:
        await _update_audited(variation, values, "variation", actor)
    return errors


async def delete_variation(variation: Variation, actor: str) -> None:
    """Soft delete: past orders keep pointing at it."""
    variation.deleted_at = datetime.now(UTC)
    variation.active = False
    await variation.save(update_fields=["deleted_at", "active", "updated_at"])
    await audit.record(
        actor,
        "variation.deleted",
        "variation",
        variation.id,
        tenant_id=variation.tenant_id,
        before=snapshot(variation),
    )

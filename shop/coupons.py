"""Coupons' writes: create, edit (with the products they apply to) and delete, each audited.

The form is validated by `shop.catalog.clean_coupon`; this module adds the store-wide rules
(unique code, at most `MAX_COUPONS`) and does the writes, so the portal, the admin API and
staff commands share them. Callers pass coupons already loaded with their store's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tortoise.transactions import in_transaction

from core import audit
from shop import inputs
from shop.catalog import Errors, clean_coupon
from shop.models import Coupon, Product

MAX_COUPONS = 500  # per store
MAX_COUPON_PRODUCTS = 1000  # product ids one coupon form may send


def snapshot(c: Coupon) -> dict[str, Any]:
    """What the audit log keeps of a coupon."""
    return {
        "code": c.code,
        "kind": str(c.kind),
        "value": c.value,
        "active": c.active,
        "max_uses": c.max_uses,
        "min_order_cents": c.min_order_cents,
        "expires_at": c.expires_at,
    }


def parse_product_ids(raw: Iterable[object]) -> list[int]:
    """The valid product ids among form values (checkboxes), at most `MAX_COUPON_PRODUCTS`."""
    return inputs.parse_ids(raw, limit=MAX_COUPON_PRODUCTS)


async def _chosen_products(tenant_id: int, raw_ids: Iterable[object]) -> list[Product]:
    """Only this store's products count; another store's ids are silently dropped."""
    ids = parse_product_ids(raw_ids)
    if not ids:
        return []
    return await Product.filter(tenant_id=tenant_id, id__in=ids, deleted_at__isnull=True)


async def create_coupon(
    tenant_id: int, form: Mapping[str, str], product_ids: Iterable[object], actor: str
) -> tuple[Coupon | None, Errors]:
    """Add a coupon limited to `product_ids` (none: every product); `(None, errors)` if refused."""
    values, errors = clean_coupon(form)
    if not errors and await Coupon.filter(tenant_id=tenant_id, code=values["code"]).exists():
        errors["code"] = ("portal.coupon.code_taken", {})
    if await Coupon.filter(tenant_id=tenant_id).count() >= MAX_COUPONS:
        errors["code"] = ("portal.error.too_many", {"max": MAX_COUPONS})
    if errors:
        return None, errors
    chosen = await _chosen_products(tenant_id, product_ids)
    async with in_transaction() as conn:
        coupon = await Coupon.create(tenant_id=tenant_id, using_db=conn, **values)
        if chosen:
            await coupon.products.add(*chosen, using_db=conn)
        await audit.record(
            actor,
            "coupon.created",
            "coupon",
            coupon.id,
            tenant_id=tenant_id,
            after=snapshot(coupon),
            using_db=conn,
        )
    return coupon, {}


async def save_coupon(
    coupon: Coupon, form: Mapping[str, str], product_ids: Iterable[object], actor: str
) -> Errors:
    """Edit a coupon and replace its products; the errors, empty when it was saved."""
    values, errors = clean_coupon(form)
    if (
        not errors
        and await Coupon.filter(tenant_id=coupon.tenant_id, code=values["code"])
        .exclude(id=coupon.id)
        .exists()
    ):
        errors["code"] = ("portal.coupon.code_taken", {})
    if errors:
        return errors
    before = snapshot(coupon)
    chosen = await _chosen_products(coupon.tenant_id, product_ids)
    async with in_transaction() as conn:
        coupon.update_from_dict(values)
        await coupon.save(using_db=conn)
        await coupon.products.clear(using_db=conn)
        if chosen:
            await coupon.products.add(*chosen, using_db=conn)
        await audit.record(
            actor,
            "coupon.updated",
            "coupon",
            coupon.id,
            tenant_id=coupon.tenant_id,
            before=before,
            after=snapshot(coupon),
            using_db=conn,
        )
    return {}


async def delete_coupon(coupon: Coupon, actor: str) -> None:
    """Delete a coupon; orders keep their discount (their coupon FK is SET NULL)."""
    before = snapshot(coupon)
    coupon_id, tenant_id = coupon.id, coupon.tenant_id
    await coupon.delete()
    await audit.record(
        actor, "coupon.deleted", "coupon", coupon_id, tenant_id=tenant_id, before=before
    )

"""Product kinds besides unique stock lines (issue 16): units against a sales cap.

A STOCK variation reserves its own rows (`shop.allocation`). Every other kind (ROLE_ONLY,
SHARED, FILE, MANUAL) sells the same thing to each buyer, so what checkout reserves is a unit
of `Variation.sold_count`: one conditional UPDATE that adds the quantity only while
`sold_count + quantity <= sales_cap` (NULL cap: always). Two checkouts racing for the last unit
both run it; the database applies them one after the other and the second matches no row, so
a capped product is never oversold, on SQLite and PostgreSQL alike. The units go back when the
order closes unpaid or is refunded before delivery (`shop.orders.transition`), as reserved
stock does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tortoise.expressions import F, Q

from core import audit
from core.vault import TokenVault
from shop.allocation import OutOfStock
from shop.errors import ShopError
from shop.models import Order, ProductFile, ProductKind, Variation
from shop.states import OPEN_ORDER_STATES

K = ProductKind
UNLIMITED = 1_000_000  # "available" of an uncapped variation (shown as "available", no count)
MAX_SHARED_CHARS = 4000  # the shared text or link every buyer gets
MAX_CAP = 1_000_000


class KindError(ShopError):
    code = "kind_error"
    message_key = "kinds.error.generic"


class KindLocked(KindError):
    """The kind cannot change while orders of the variation are open (their units would be
    released against the wrong counter)."""

    code = "kind_locked"
    message_key = "kinds.error.kind_locked"


class SoldOut(OutOfStock):
    """Not enough units left under the variation's sales cap (nothing was reserved)."""


class NotDeliverable(ShopError):
    """A SHARED variation without its text or a FILE one without its file: not for sale."""

    code = "product_unavailable"
    message_key = "storefront.error.product_unavailable"


def is_stock(kind: str | ProductKind) -> bool:
    return ProductKind(kind) == K.STOCK


async def reserve_units(conn: Any, variation_id: int, quantity: int) -> None:
    """Take `quantity` units of a non-stock variation, in the caller's transaction; `SoldOut`
    when the cap does not leave that many."""
    moved = await (
        Variation.filter(id=variation_id)
        .exclude(kind=K.STOCK)
        .filter(Q(sales_cap__isnull=True) | Q(sales_cap__gte=F("sold_count") + quantity))
        .using_db(conn)
        .update(sold_count=F("sold_count") + quantity)
    )
    if not moved:
        raise SoldOut(f"variation {variation_id}: fewer than {quantity} units left")


async def release_units(order: Order, conn: Any) -> int:
    """Give a closing order's units back to a non-stock variation; returns how many."""
    moved = await (
        Variation.filter(id=order.variation_id, sold_count__gte=order.quantity)
        .exclude(kind=K.STOCK)
        .using_db(conn)
        .update(sold_count=F("sold_count") - order.quantity)
    )
    return order.quantity if moved else 0


def units_left(variation: Variation) -> int:
    """What a non-stock variation can still sell (`UNLIMITED` without a cap)."""
    if variation.sales_cap is None:
        return UNLIMITED
    return max(0, variation.sales_cap - variation.sold_count)


async def check_deliverable(variation: Variation) -> None:
    """`NotDeliverable` when the variation's kind lacks what it delivers."""
    if variation.kind == K.SHARED and not variation.shared_content_enc:
        raise NotDeliverable(f"variation {variation.id}: no shared content")
    if variation.kind == K.FILE and not await ProductFile.exists(variation_id=variation.id):
        raise NotDeliverable(f"variation {variation.id}: no file")


async def non_stock_available(variation_ids: Iterable[int]) -> dict[int, int]:
    """{variation_id: units left} for the non-stock variations among `variation_ids`."""
    ids = list(variation_ids)
    if not ids:
        return {}
    rows = await Variation.filter(id__in=ids).exclude(kind=K.STOCK)
    return {v.id: units_left(v) for v in rows}


async def check_kind_change(variation: Variation, new_kind: ProductKind) -> None:
    """`KindLocked` when `new_kind` differs and the variation has open orders."""
    if ProductKind(variation.kind) == new_kind:
        return
    if await Order.filter(variation_id=variation.id, status__in=OPEN_ORDER_STATES).exists():
        raise KindLocked(f"variation {variation.id} has open orders")


def parse_cap(raw: str | None) -> int | None:
    """A sales cap from a form: empty is unlimited; else 1..MAX_CAP (`KindError`)."""
    text = (raw or "").strip()
    if not text:
        return None
    if len(text) > 7 or not text.isdigit() or not 1 <= int(text) <= MAX_CAP:
        raise KindError(f"sales cap {text[:10]!r} not in 1..{MAX_CAP}")
    return int(text)


async def save_settings(
    vault: TokenVault, variation: Variation, form: Mapping[str, str], actor: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Set a variation's kind, sales cap and shared text from a form (the text encrypted);
    the errors by field (i18n key, params), empty when it was saved and audited."""
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    raw_kind = (form.get("kind") or "")[:16]
    if raw_kind not in {k.value for k in ProductKind}:
        errors["kind"] = ("portal.error.required", {})
        return errors
    kind = ProductKind(raw_kind)
    try:
        cap = None if kind == K.STOCK else parse_cap(form.get("sales_cap"))
    except KindError:
        errors["sales_cap"] = ("portal.error.between", {"lo": 1, "hi": MAX_CAP})
        cap = None
    shared = (form.get("shared_content") or "")[: MAX_SHARED_CHARS + 1].strip()
    if kind == K.SHARED and not shared:
        errors["shared_content"] = ("portal.error.required", {})
    elif len(shared) > MAX_SHARED_CHARS:
        errors["shared_content"] = ("portal.error.too_long", {"max": MAX_SHARED_CHARS})
    try:
        await check_kind_change(variation, kind)
    except KindLocked:
        errors["kind"] = ("kinds.error.kind_locked", {})
    if errors:
        return errors
    before = {"kind": str(variation.kind), "sales_cap": variation.sales_cap}
    variation.kind = kind
    variation.sales_cap = cap
    if kind == K.SHARED:
        variation.shared_content_enc = vault.encrypt(shared)
    await variation.save(update_fields=["kind", "sales_cap", "shared_content_enc", "updated_at"])
    await audit.record(
        actor,
        "variation.kind_updated",
        "variation",
        variation.id,
        tenant_id=variation.tenant_id,
        before=before,
        after={"kind": str(kind), "sales_cap": cap, "shared_chars": len(shared) or None},
    )
    return {}

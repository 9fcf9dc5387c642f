"""Stock: bulk add (one item per line, encrypted), counts, masked preview, delete unused.

Shared by the portal (paste / file upload) and the storefront (staff "add stock" command).
Items are encrypted with the token vault; `content_hash` (an HMAC-SHA256 of the plain text,
keyed with the platform's `STOCK_HASH_KEY`) refuses duplicates within a variation, whether
already stored or repeated in the same paste. A bare hash would let anyone holding the database
check which known keys or accounts a seller has in stock; the keyed one cannot be matched
without the key. Callers pass the key in (`settings.stock_hash_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from core import audit
from core.vault import TokenVault
from shop.errors import ShopError
from shop.kinds import non_stock_available
from shop.models import StockItem, Variation
from shop.states import StockStatus

MAX_ITEM_CHARS = 2000  # one key / account / code; longer lines are rejected
MAX_LINES_PER_ADD = 10_000  # one paste or file; bigger imports go in several batches
MAX_UPLOAD_BYTES = 1024 * 1024  # 1 MiB text file
PREVIEW_PAGE = 50
MAX_DELETE_IDS = 1000  # item ids one "delete checked" form may name
_CHUNK = 500  # rows per bulk insert
log = logging.getLogger(__name__)


class StockError(ShopError):
    code = "stock_error"
    message_key = "shop.error.generic"


class TooManyLines(StockError):
    code = "too_many_lines"
    message_key = "shop.error.generic"


@dataclass
class AddResult:
    """What happened to a bulk add: counts plus the line numbers (1-based) of what was skipped."""

    added: int = 0
    duplicates: list[int] = field(default_factory=list)  # already stored or repeated in the paste
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, "empty"|"too_long")
    total_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
            "total_lines": self.total_lines,
            "duplicate_lines": self.duplicates[:100],
            "rejected_lines": self.rejected[:100],
        }


def content_hash(content: str, key: bytes | str) -> str:
    """The duplicate-detection digest of one item: HMAC-SHA256 keyed with `key`, hex."""
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    if not raw_key:
        raise ValueError("stock hash key is empty")
    return hmac.new(raw_key, content.encode("utf-8"), hashlib.sha256).hexdigest()


def mask(content: str) -> str:
    """A recognisable but unusable preview: 'ABCD-1234-WXYZ' -> 'AB••••••••YZ'."""
    text = content.strip()
    if len(text) <= 4:
        return "•" * max(len(text), 4)
    keep = 2 if len(text) < 12 else 3
    return f"{text[:keep]}{'•' * min(len(text) - 2 * keep, 12)}{text[-keep:]}"


def split_lines(text: str) -> list[str]:
    """One item per line; trailing whitespace and CR are dropped, inner spaces kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1].strip() == "":
        lines.pop()  # the newline at the end of a file is not an empty item
    return [line.rstrip() for line in lines]


def classify_lines(
    lines: list[str], key: bytes | str
) -> tuple[list[tuple[int, str, str]], AddResult]:
    """Split into candidates (line no, content, hash) and the rejected / in-paste duplicates."""
    result = AddResult(total_lines=len(lines))
    seen: set[str] = set()
    candidates: list[tuple[int, str, str]] = []
    for number, raw in enumerate(lines, start=1):
        item = raw.strip()
        if not item:
            result.rejected.append((number, "empty"))
            continue
        if len(item) > MAX_ITEM_CHARS:
            result.rejected.append((number, "too_long"))
            continue
        digest = content_hash(item, key)
        if digest in seen:
            result.duplicates.append(number)
            continue
        seen.add(digest)
        candidates.append((number, item, digest))
    return candidates, result


async def add_stock(
    vault: TokenVault,
    tenant_id: int,
    variation_id: int,
    text: str,
    actor: str,
    redis: Any = None,
    *,
    hash_key: bytes | str,
) -> AddResult:
    """Add one item per line of `text` to a variation of `tenant_id` (encrypted; duplicates
    found by an HMAC keyed with `hash_key`, the platform's `STOCK_HASH_KEY`).

    Raises `StockError` if the variation is not the tenant's, `TooManyLines` past the limit.
    """
    variation = await Variation.get_or_none(
        id=variation_id, tenant_id=tenant_id, deleted_at__isnull=True
    )
    if variation is None:
        raise StockError(f"variation {variation_id} not found for tenant {tenant_id}")
    lines = split_lines(text)
    if len(lines) > MAX_LINES_PER_ADD:
        raise TooManyLines(f"{len(lines)} lines; at most {MAX_LINES_PER_ADD} per add")
    candidates, result = classify_lines(lines, hash_key)
    for start in range(0, len(candidates), _CHUNK):
        await _insert_chunk(vault, variation, candidates[start : start + _CHUNK], result)
    result.duplicates.sort()
    if result.added:
        await audit.record(
            actor,
            "stock.added",
            "variation",
            variation_id,
            tenant_id=tenant_id,
            after={
                "added": result.added,
                "duplicates": len(result.duplicates),
                "rejected": len(result.rejected),
            },
        )
        await on_stock_added(variation_id, result.added, redis)
    return result


async def _insert_chunk(
    vault: TokenVault, variation: Variation, chunk: list[tuple[int, str, str]], result: AddResult
) -> None:
    hashes = [digest for _, _, digest in chunk]
    # tortoise types values_list(flat=True) as list[tuple]; it is a list of the values.
    stored = set(
        cast(
            list[str],
            await StockItem.filter(variation_id=variation.id, content_hash__in=hashes).values_list(
                "content_hash", flat=True
            ),
        )
    )
    fresh = [c for c in chunk if c[2] not in stored]
    result.duplicates.extend(number for number, _, digest in chunk if digest in stored)
    rows = [
        StockItem(
            tenant_id=variation.tenant_id,
            variation_id=variation.id,
            content_enc=vault.encrypt(item),
            content_hash=digest,
        )
        for _, item, digest in fresh
    ]
    try:
        async with in_transaction() as conn:
            await StockItem.bulk_create(rows, using_db=conn)
        result.added += len(rows)
    except IntegrityError:  # a concurrent add stored some of them: insert one by one
        for (number, _, _), row in zip(fresh, rows, strict=True):
            try:
                await StockItem.create(
                    tenant_id=row.tenant_id,
                    variation_id=row.variation_id,
                    content_enc=row.content_enc,
                    content_hash=row.content_hash,
                )
                result.added += 1
            except IntegrityError:
                result.duplicates.append(number)


async def on_stock_added(variation_id: int, added: int, redis: Any = None) -> int:
    """Hook run after items were added to a variation; returns `added`.

    Fills this variation's `waiting_stock` orders, oldest first (`shop.waiting_stock`), and
    hands them to their worker through the caller's `redis` client. Without one (or if Redis
    refuses) the filled orders stay owed in the database and the reconciler's relay
    (`python -m reconciler`) wakes their worker within a second or two.
    """
    from shop.waiting_stock import retry_waiting_stock

    variation = await Variation.get_or_none(id=variation_id)
    if variation is None or not added:
        return added
    report = await retry_waiting_stock(
        variation.tenant_id, variation.product_id, redis=redis, actor="system:restock"
    )
    if report.delivered:
        log.info("restock of variation %s filled orders %s", variation_id, report.order_ids)
    return added


async def counts(variation_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """{variation_id: {available, reserved, sold}}; for a non-stock kind `available` is the
    units left under its sales cap (`shop.kinds.UNLIMITED` without one)."""
    ids = list(variation_ids)
    out = {vid: {str(s): 0 for s in StockStatus} for vid in ids}
    if not ids:
        return out
    rows = (
        await StockItem.filter(variation_id__in=ids)
        .group_by("variation_id", "status")
        .annotate(n=Count("id"))
        .values_list("variation_id", "status", "n")
    )
    for vid, status, n in rows:
        out[int(vid)][str(status)] = int(n)
    for vid, left in (await non_stock_available(ids)).items():  # other kinds: units left
        out[vid]["available"] = left
    return out


async def preview(
    vault: TokenVault,
    tenant_id: int,
    variation_id: int,
    *,
    status: StockStatus | None = None,
    offset: int = 0,
    limit: int = PREVIEW_PAGE,
) -> list[dict[str, Any]]:
    """A page of items, newest first, with masked content (never the plain text)."""
    query = StockItem.filter(tenant_id=tenant_id, variation_id=variation_id)
    if status is not None:
        query = query.filter(status=status)
    items = await query.order_by("-id").offset(offset).limit(limit)
    out = []
    for item in items:
        try:
            masked = mask(vault.decrypt(item.content_enc).reveal())
        except Exception:  # noqa: BLE001 - a key was dropped: show that, do not fail the page
            masked = "????"
        out.append(
            {
                "id": item.id,
                "masked": masked,
                "status": str(item.status),
                "created_at": item.created_at,
                "sold_at": item.sold_at,
            }
        )
    return out


async def delete_unused(
    tenant_id: int, variation_id: int, item_ids: Iterable[int] | None, actor: str
) -> int:
    """Delete available items (all of the variation's when `item_ids` is None); returns how
    many. Reserved and sold items are never deleted: they belong to orders."""
    query = StockItem.filter(
        tenant_id=tenant_id, variation_id=variation_id, status=StockStatus.AVAILABLE
    )
    if item_ids is not None:
        ids = [int(i) for i in item_ids]
        if not ids:
            return 0
        query = query.filter(id__in=ids)
    async with in_transaction() as conn:
        deleted = int(await query.using_db(conn).delete() or 0)
        if deleted:
            await audit.record(
                actor,
                "stock.deleted",
                "variation",
                variation_id,
                tenant_id=tenant_id,
                after={"deleted": deleted},
                using_db=conn,
            )
    return deleted


async def low_stock(tenant_id: int, threshold: int) -> list[dict[str, Any]]:
    """Active variations of active products whose available stock is below `threshold`."""
    variations = await Variation.filter(
        tenant_id=tenant_id,
        active=True,
        deleted_at__isnull=True,
        product__active=True,
        product__deleted_at__isnull=True,
    ).prefetch_related("product")
    numbers = await counts(v.id for v in variations)
    return [
        {"variation": v, "product": v.product, "available": numbers[v.id]["available"]}
        for v in variations
        if numbers[v.id]["available"] < threshold
    ]

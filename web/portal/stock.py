"""Stock per variation: bulk add (paste or text file), masked preview, delete unused items."""

from __future__ import annotations

from quart import Blueprint, current_app, g, redirect, request, url_for

from shop import inputs, stock
from shop.models import Product, Variation
from shop.states import StockStatus
from web.portal.context import (
    _,
    actor,
    owned,
    redis,
    render,
    say,
    store_required,
    vault,
    wants_partial,
)

bp = Blueprint("stock", __name__)

ALLOWED_UPLOAD_TYPES = ("text/plain", "text/csv", "application/octet-stream", "")


async def _page(
    variation: Variation, summary: dict | None = None, error: str | None = None, status: int = 200
):
    product = await Product.get(id=variation.product_id)
    page = inputs.page_number(request.args.get("page"))
    wanted = request.args.get("status") or ""
    status_filter = StockStatus(wanted) if wanted in {s.value for s in StockStatus} else None
    items = await stock.preview(
        vault(),
        g.tenant.id,
        variation.id,
        status=status_filter,
        offset=(page - 1) * stock.PREVIEW_PAGE,
    )
    counts = (await stock.counts([variation.id]))[variation.id]
    return await render(
        "portal/stock.html",
        status=status,
        variation=variation,
        product=product,
        items=items,
        counts=counts,
        summary=summary,
        error=error,
        page=page,
        status_filter=wanted,
        low=counts["available"] < g.tenant.low_stock_threshold,
        max_lines=stock.MAX_LINES_PER_ADD,
        max_upload_kb=stock.MAX_UPLOAD_BYTES // 1024,
    )


@bp.get("/variations/<int:variation_id>/stock")
@store_required
async def view(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    return await _page(variation)


async def _read_input() -> tuple[str | None, str | None]:
    """The pasted text or the uploaded file's text; (None, error key) when unusable."""
    form = await request.form
    files = await request.files
    upload = files.get("file")
    if upload is not None and upload.filename:
        if upload.content_type not in ALLOWED_UPLOAD_TYPES:
            return None, "portal.stock.bad_file_type"
        raw = upload.read(stock.MAX_UPLOAD_BYTES + 1)
        if len(raw) > stock.MAX_UPLOAD_BYTES:
            return None, "portal.stock.file_too_big"
        try:
            return raw.decode("utf-8-sig"), None
        except UnicodeDecodeError:
            return None, "portal.stock.not_utf8"
    text = form.get("items") or ""
    if not text.strip():
        return None, "portal.stock.nothing"
    return text, None


@bp.post("/variations/<int:variation_id>/stock")
@store_required
async def add(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    text, error = await _read_input()
    summary = None
    if text is not None:
        try:
            result = await stock.add_stock(
                vault(),
                g.tenant.id,
                variation.id,
                text,
                actor(),
                redis(),
                hash_key=current_app.config["VITRINE_SETTINGS"].stock_hash_key,
            )
        except stock.TooManyLines:
            error = "portal.stock.too_many_lines"
        else:
            summary = result.as_dict()
    message = (
        _(error, max=stock.MAX_LINES_PER_ADD, kb=stock.MAX_UPLOAD_BYTES // 1024) if error else None
    )
    if wants_partial():  # the summary, plus fresh counts and first page of items (out of band)
        counts = (await stock.counts([variation.id]))[variation.id]
        items = await stock.preview(vault(), g.tenant.id, variation.id)
        return await render(
            "portal/_stock_summary.html",
            status=400 if error else 200,
            summary=summary,
            error=message,
            counts=counts,
            variation=variation,
            items=items,
            oob=True,
            low=counts["available"] < g.tenant.low_stock_threshold,
        )
    return await _page(variation, summary, message, 400 if error else 200)


@bp.post("/variations/<int:variation_id>/stock/delete")
@store_required
async def delete(variation_id: int):
    """Delete the checked available items, or all available ones with `all=1`."""
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    form = await request.form
    if form.get("all") == "1":
        ids = None
    else:
        ids = inputs.parse_ids(form.getlist("item"), limit=stock.MAX_DELETE_IDS)
    deleted = await stock.delete_unused(g.tenant.id, variation.id, ids, actor())
    await say("portal.stock.deleted", count=deleted)
    return redirect(url_for("stock.view", variation_id=variation.id))

"""Product kinds in the portal (issue 16): what a variation delivers (stock lines, a role only,
a shared text, a file, a manual service), its sales cap, the file upload, and the manual
delivery of an order with a note. Views parse and render; `shop.kinds`,
`shop.product_files` and `shop.fulfilment` write and audit."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, request, url_for

from shop import fulfilment, kinds, product_files
from shop.errors import ShopError
from shop.models import Order, Product, ProductKind, Variation
from web.portal.context import (
    _,
    actor,
    form_errors,
    owned,
    redis,
    render,
    say,
    store_required,
    vault,
)

bp = Blueprint("kinds", __name__)


async def _page(
    variation: Variation,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    file_error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    product = await Product.get(id=variation.product_id)
    if form is None:
        shared = ""
        if variation.shared_content_enc:
            shared = vault().decrypt(variation.shared_content_enc).reveal()
        form = {
            "kind": str(variation.kind),
            "sales_cap": "" if variation.sales_cap is None else str(variation.sales_cap),
            "shared_content": shared,
        }
    return await render(
        "portal/variation_kind.html",
        status=status,
        variation=variation,
        product=product,
        form=form,
        errors=errors or {},
        file=await product_files.file_info(variation.id),
        file_error=file_error,
        kinds=[k.value for k in ProductKind],
        max_shared=kinds.MAX_SHARED_CHARS,
        max_mib=product_files.MAX_FILE_BYTES // 2**20,
    )


@bp.get("/variations/<int:variation_id>/delivery")
@store_required
async def view(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    return await _page(variation)


@bp.post("/variations/<int:variation_id>/delivery")
@store_required
async def save(variation_id: int):
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    form = await request.form
    if errors := await kinds.save_settings(vault(), variation, form, actor()):
        return await _page(variation, dict(form), form_errors(errors), status=400)
    await say("kinds.portal.saved", name=variation.name)
    return redirect(url_for("kinds.view", variation_id=variation.id))


@bp.post("/variations/<int:variation_id>/file")
@store_required
async def upload_file(variation_id: int):
    """The file of a FILE variation; the request's size is bounded first (`uploads`)."""
    variation = await owned(Variation, variation_id, deleted_at__isnull=True)
    upload = (await request.files).get("file")
    if upload is None or not upload.filename:
        return await _page(variation, file_error=_("kinds.file.empty"), status=400)
    data = upload.read(product_files.MAX_FILE_BYTES + 1)
    try:
        stored = await product_files.store_file(vault(), variation, upload.filename, data, actor())
    except product_files.FileRefused as exc:
        return await _page(variation, file_error=exc.message(g.locale), status=400)
    await say("kinds.file.stored", name=stored.name)
    return redirect(url_for("kinds.view", variation_id=variation.id))


@bp.post("/orders/<int:order_id>/fulfil")
@store_required
async def fulfil(order_id: int):
    """Deliver a manual order with a note: the store's bot DMs it to the buyer."""
    order = await owned(Order, order_id)
    note = ((await request.form).get("note") or "")[: fulfilment.MAX_NOTE_CHARS * 4]
    try:
        recorded = await fulfilment.fulfil(
            vault(), g.tenant.id, order.id, note, actor(), redis=redis()
        )
    except ShopError as exc:
        await say("kinds.manual.failed", "error", reason=exc.message(g.locale))
    else:
        await say("kinds.manual.recorded" if recorded else "kinds.manual.already", order=order.id)
    return redirect(url_for("orders.order_detail", order_id=order.id))

"""Product kinds in the portal (issue 16): the delivery-type page, the file upload and its
limit, the stock page per kind, manual delivery from the order page, the pending work on the
dashboard and in the admin KPIs. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import uuid

from quart.datastructures import FileStorage

from core.models import AuditLog
from core.vault import TokenVault
from shop.models import (
    FulfilmentNote,
    Order,
    Product,
    ProductFile,
    ProductKind,
    Variation,
)
from shop.product_files import MAX_FILE_BYTES
from shop.states import OrderStatus
from tests.helpers.admin import AUTH, admin_settings
from tests.helpers.portal import make_seller


async def _variation(seller, kind: ProductKind = ProductKind.STOCK) -> Variation:
    product = await Product.create(tenant=seller.tenant, name="Curso")
    return await Variation.create(
        tenant=seller.tenant, product=product, name="Acesso", price_cents=4990, kind=kind
    )


def _vault(app) -> TokenVault:
    return TokenVault(app.config["VITRINE_SETTINGS"].token_encryption_keys)


async def _upload(seller, variation_id: int, data: bytes, name: str = "guia.pdf"):
    upload = FileStorage(io.BytesIO(data), filename=name, content_type="application/pdf")
    return await seller.client.post(
        f"/variations/{variation_id}/file",
        form={"csrf_token": await seller.csrf()},
        files={"file": upload},
        # a browser declares the body's length (Quart's test client does not): the file plus
        # the multipart framing around it
        headers={"Content-Length": str(len(data) + 400)},
    )


async def test_seller_picks_shared_kind_with_a_cap_and_the_text_is_stored_encrypted(portal):
    seller = await make_seller(portal)
    v = await _variation(seller)
    status, page = await seller.text(f"/variations/{v.id}/delivery")
    assert status == 200 and 'value="shared"' in page and 'name="csrf_token"' in page
    no_csrf = await seller.client.post(f"/variations/{v.id}/delivery", form={"kind": "shared"})
    assert no_csrf.status_code == 403
    refused = await seller.post(f"/variations/{v.id}/delivery", {"kind": "shared"})
    assert refused.status_code == 400 and 'id="e-shared_content"' in await refused.get_data(True)
    saved = await seller.post(
        f"/variations/{v.id}/delivery",
        {"kind": "shared", "sales_cap": "30", "shared_content": "https://curso.example/turma"},
    )
    assert saved.status_code == 302
    v = await Variation.get(id=v.id)
    assert (v.kind, v.sales_cap) == (ProductKind.SHARED, 30)
    assert "curso.example" not in (v.shared_content_enc or "")
    assert _vault(portal).decrypt(v.shared_content_enc or "").reveal().endswith("/turma")
    # the stock page no longer offers stock lines for this variation
    _, stock_page = await seller.text(f"/variations/{v.id}/stock")
    assert 'id="kind-notice"' in stock_page and 'id="stock-form"' not in stock_page
    assert "0 de 30" in stock_page
    # the product pages link to the delivery type instead of the stock lines
    _, variation_page = await seller.text(f"/variations/{v.id}/edit")
    assert 'id="kind-link"' in variation_page and "Conteúdo compartilhado" in variation_page
    for path in ("/products", f"/products/{v.product_id}/edit"):
        status, listing = await seller.text(path)
        assert status == 200 and f"/variations/{v.id}/delivery" in listing
        assert f"/variations/{v.id}/stock" not in listing


async def test_file_upload_is_encrypted_and_over_the_discord_limit_is_refused_clearly(portal):
    seller = await make_seller(portal)
    v = await _variation(seller, ProductKind.FILE)
    data = b"%PDF-1.4 " + uuid.uuid4().bytes * 40_000  # ~640 KB: more than a form spills
    ok = await _upload(seller, v.id, data)
    assert ok.status_code == 302
    row = await ProductFile.get(variation_id=v.id)
    assert (row.name, row.size) == ("guia.pdf", len(data))
    assert data[:200].hex() not in row.content_enc
    _, page = await seller.text(f"/variations/{v.id}/delivery")
    assert 'id="file-current"' in page and "guia.pdf" in page

    over = await _upload(seller, v.id, b"x" * (MAX_FILE_BYTES + 1), "grande.zip")
    body = await over.get_data(True)
    assert over.status_code == 400 and 'id="file-error"' in body and "10 MiB" in body
    way_over = await _upload(seller, v.id, b"x" * (MAX_FILE_BYTES + 2 * 1024 * 1024), "g.zip")
    assert way_over.status_code == 413 and "10 MiB" in await way_over.get_data(True)
    assert (await ProductFile.get(variation_id=v.id)).size == len(data)  # unchanged
    assert await AuditLog.filter(action="variation.file_uploaded").count() == 1


async def test_another_store_cannot_see_or_change_a_variations_delivery(portal):
    owner = await make_seller(portal, "Dona")
    other = await make_seller(portal, "Outra")
    v = await _variation(owner, ProductKind.FILE)
    assert (await other.client.get(f"/variations/{v.id}/delivery")).status_code == 404
    assert (await _upload(other, v.id, b"evil")).status_code == 404
    resp = await other.post(f"/variations/{v.id}/delivery", {"kind": "stock"})
    assert resp.status_code == 404
    assert not await ProductFile.exists()


async def _awaiting_order(seller, variation: Variation, buyer: str = "555") -> Order:
    return await Order.create(
        tenant=seller.tenant,
        product_id=variation.product_id,
        variation=variation,
        interaction_id=uuid.uuid4().hex,
        buyer_discord_id=buyer,
        buyer_name="ana",
        quantity=1,
        unit_price_cents=4990,
        total_cents=4990,
        status=OrderStatus.AWAITING_FULFILMENT,
    )


async def test_staff_deliver_a_manual_order_from_the_order_page_and_it_leaves_pending(portal):
    seller = await make_seller(portal)
    v = await _variation(seller, ProductKind.MANUAL)
    order = await _awaiting_order(seller, v)
    _, dashboard = await seller.text("/")
    assert 'id="awaiting-count">1<' in dashboard
    _, page = await seller.text(f"/orders/{order.id}")
    assert 'id="fulfil-form"' in page
    empty = await seller.post(f"/orders/{order.id}/fulfil", {"note": "  "})
    assert empty.status_code == 302 and not await FulfilmentNote.exists()
    done = await seller.post(f"/orders/{order.id}/fulfil", {"note": "Acesse: https://x/y"})
    assert done.status_code == 302
    note = await FulfilmentNote.get(order_id=order.id)
    assert _vault(portal).decrypt(note.note_enc).reveal() == "Acesse: https://x/y"
    assert (await Order.get(id=order.id)).wake_at is not None  # the bot delivers it now
    # another store's staff cannot deliver it
    other = await make_seller(portal, "Outra")
    assert (await other.post(f"/orders/{order.id}/fulfil", {"note": "x"})).status_code == 404


async def test_admin_kpis_count_awaiting_manual_deliveries(portal, tmp_path, db, redis_url):
    from web.admin import create_app

    seller = await make_seller(portal)
    v = await _variation(seller, ProductKind.MANUAL)
    await _awaiting_order(seller, v)
    await _awaiting_order(seller, v, buyer="556")
    admin = create_app(admin_settings(tmp_path, db, redis_url))
    async with admin.test_app():
        client = admin.test_client()
        body = await (await client.get("/api/indicators", headers=AUTH)).get_json()
        assert body["orders"]["awaiting_fulfilment"] == 2
        metrics = await (await client.get("/metrics", headers=AUTH)).get_data(True)
        assert 'vitrine_orders_open{status="awaiting_fulfilment"} 2.0' in metrics

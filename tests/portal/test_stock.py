"""shop.stock (bulk add, duplicates, rejects, masking, delete unused) and the stock pages."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from quart.datastructures import FileStorage

from core.vault import TokenVault
from shop import stock
from shop.models import Account, Product, StockItem, Tenant, Variation
from shop.states import StockStatus
from tests.helpers.portal import make_seller

KEY = "test-stock-hash-key"

LINES_20_WITH_2_DUPLICATES = (
    "\n".join([f"KEY-{i:04d}-ABCD" for i in range(18)] + ["KEY-0003-ABCD", "KEY-0010-ABCD"]) + "\n"
)


@pytest.fixture
def vault():
    return TokenVault([Fernet.generate_key().decode()])


async def _variation(name="Loja"):
    owner = await Account.create(discord_id=name, username=name)
    tenant = await Tenant.create(owner=owner, name=name)
    product = await Product.create(tenant=tenant, name="Key")
    return await Variation.create(tenant=tenant, product=product, name="1 mês", price_cents=990)


async def test_bulk_add_counts_added_duplicates_and_rejected(db, vault):
    v = await _variation()
    text = LINES_20_WITH_2_DUPLICATES.replace("KEY-0017-ABCD", "   ") + "x" * 2001 + "\n"
    result = await stock.add_stock(vault, v.tenant_id, v.id, text, "test", hash_key=KEY)
    assert (result.added, result.duplicates, result.total_lines) == (17, [19, 20], 21)
    assert result.rejected == [(18, "empty"), (21, "too_long")]
    items = await StockItem.filter(variation_id=v.id)
    assert len(items) == 17
    # Encrypted at rest: no stored row holds a plaintext line (a bare "KEY" could
    # appear by chance inside base64 ciphertext, so look for whole lines).
    plaintexts = [f"KEY-{i:04d}-ABCD" for i in range(18)]
    assert not any(line in i.content_enc for i in items for line in plaintexts)
    assert sorted(vault.decrypt(i.content_enc).reveal() for i in items)[0] == "KEY-0000-ABCD"
    again = await stock.add_stock(
        vault, v.tenant_id, v.id, "KEY-0001-ABCD\nNEW-1\n", "test", hash_key=KEY
    )
    assert (again.added, again.duplicates) == (1, [1])
    assert (await stock.counts([v.id]))[v.id] == {
        "available": 18,
        "reserved": 0,
        "sold": 0,
        "replaced": 0,
    }


async def test_same_item_may_exist_in_two_variations(db, vault):
    v1 = await _variation("a")
    v2 = await Variation.create(
        tenant_id=v1.tenant_id, product_id=v1.product_id, name="2", price_cents=1
    )
    for variation in (v1, v2):
        added = await stock.add_stock(vault, v1.tenant_id, variation.id, "SAME", "t", hash_key=KEY)
        assert added.added == 1


async def test_another_tenants_variation_is_refused(db, vault):
    v = await _variation("a")
    other = await _variation("b")
    with pytest.raises(stock.StockError):
        await stock.add_stock(vault, other.tenant_id, v.id, "X", "t", hash_key=KEY)


async def test_delete_unused_never_touches_reserved_or_sold(db, vault):
    v = await _variation()
    await stock.add_stock(vault, v.tenant_id, v.id, "A\nB\nC\nD\n", "t", hash_key=KEY)
    items = await StockItem.filter(variation_id=v.id).order_by("id")
    await StockItem.filter(id=items[0].id).update(status=StockStatus.SOLD)
    await StockItem.filter(id=items[1].id).update(status=StockStatus.RESERVED)
    assert await stock.delete_unused(v.tenant_id, v.id, [items[0].id, items[2].id], "t") == 1
    assert await stock.delete_unused(v.tenant_id, v.id, None, "t") == 1
    assert (await stock.counts([v.id]))[v.id] == {
        "available": 0,
        "reserved": 1,
        "sold": 1,
        "replaced": 0,
    }
    assert await stock.on_stock_added(v.id, 3) == 3


@given(st.text(min_size=1, max_size=60).filter(lambda s: s.strip()))
def test_mask_never_reveals_the_middle(content):
    masked = stock.mask(content)
    assert "•" in masked
    assert content.strip() not in masked


async def test_paste_twenty_lines_with_two_duplicates_through_the_page(portal):
    seller = await make_seller(portal)
    product = await Product.create(tenant=seller.tenant, name="Netflix")
    v = await Variation.create(
        tenant=seller.tenant, product=product, name="1 mês", price_cents=1990
    )
    resp = await seller.post(
        f"/variations/{v.id}/stock",
        {"items": LINES_20_WITH_2_DUPLICATES},
        headers={"HX-Request": "true"},
    )
    body = await resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="summary-added">18<' in body and 'id="summary-duplicates">2<' in body
    assert 'id="stock-counts" hx-swap-oob="true"' in body and 'id="count-available">18<' in body
    assert 'id="stock-items-table" hx-swap-oob="true"' in body and "low-stock-alert" not in body
    status, page = await seller.text(f"/variations/{v.id}/stock")
    assert 'id="count-available">18<' in page
    assert "KEY-0001-ABCD" not in page and "KEY" in page  # masked preview only


async def test_upload_a_file_and_limits(portal):
    seller = await make_seller(portal)
    product = await Product.create(tenant=seller.tenant, name="Spotify")
    v = await Variation.create(tenant=seller.tenant, product=product, name="1", price_cents=500)
    token = await seller.csrf()
    upload = FileStorage(
        io.BytesIO(b"\xef\xbb\xbfa@b.com:1\r\nc@d.com:2\r\n"),
        filename="contas.txt",
        content_type="text/plain",
    )
    resp = await seller.client.post(
        f"/variations/{v.id}/stock", form={"csrf_token": token}, files={"file": upload}
    )
    assert resp.status_code == 200 and 'id="summary-added">2<' in await resp.get_data(True)
    big = FileStorage(
        io.BytesIO(b"k\n" * (stock.MAX_UPLOAD_BYTES // 2 + 1)),
        filename="big.txt",
        content_type="text/plain",
    )
    resp = await seller.client.post(
        f"/variations/{v.id}/stock", form={"csrf_token": token}, files={"file": big}
    )
    assert resp.status_code == 400 and "1024 KB" in await resp.get_data(True)
    resp = await seller.post(f"/variations/{v.id}/stock", {"items": "  \n"})
    assert resp.status_code == 400
    resp = await seller.post(f"/variations/{v.id}/stock/delete", {"all": "1"})
    assert resp.status_code == 302
    assert await StockItem.filter(variation_id=v.id).count() == 0

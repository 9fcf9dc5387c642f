"""End to end, real workers (issues 16 and 17): the ticket's "resend" of a FILE order sends the
file again under its own name, with the same bytes, as the delivery DM did."""

from __future__ import annotations

import os

import pytest

from shop import product_files
from shop.models import ProductKind, Variation
from tests.storefront.ticket_helpers import delivered, open_ticket, ticket_store

pytestmark = pytest.mark.e2e


async def test_ticket_resend_of_a_file_order_sends_the_file_under_its_own_name(
    db_fleet, dc, mpc, svc, sandbox
):
    store = await ticket_store(db_fleet, dc, sandbox, [])
    variation = store.variations[0]
    await Variation.filter(id=variation.id).update(kind=ProductKind.FILE)
    data = b"%PDF-1.7\n" + os.urandom(50_000)
    await product_files.store_file(db_fleet.vault, variation, "guia-completo.pdf", data, "test")
    order_id, dm = await delivered(db_fleet, dc, mpc, svc, store)
    assert [a["filename"] for a in dm.attachments] == ["guia-completo.pdf"]
    ticket, opening = await open_ticket(dc, sandbox, store, dm, order_id)
    seen = {m.id for m in await store.buyer.dms()}

    resent = await (await store.staff.click(opening, f"vt:tk:resend:{ticket.id}")).wait_reply()
    assert "reenviado" in resent.content
    again = await store.buyer.wait_dm(lambda m: m.id not in seen and m.attachments, timeout=10)
    assert [a["filename"] for a in again.attachments] == ["guia-completo.pdf"]
    assert await dc.fetch_attachment(again.attachments[0]) == data
    assert len([m for m in await store.buyer.dms() if m.id not in seen]) == 1  # sent once

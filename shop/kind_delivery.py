"""What a delivery of each non-stock kind carries (issue 16); `shop.delivery` sends the rest.

SHARED: the variation's text, decrypted (the same for every buyer). FILE: the variation's file
as an attachment. ROLE_ONLY: nothing but a confirmation (the access engine adds the roles once
the order is delivered). MANUAL: the note staff wrote (`shop.fulfilment`). The ids returned
name what the message carries, for its nonce: a later note or a new file makes another one.
"""

from __future__ import annotations

from typing import Any

from core.vault import TokenVault
from shop import fulfilment, product_files
from shop.models import Order, ProductFile, ProductKind, Variation

K = ProductKind


async def kind_of(variation_id: int, conn: Any = None) -> ProductKind:
    query = Variation.filter(id=variation_id)
    if conn is not None:
        query = query.using_db(conn)
    variation = await query.only("id", "kind").first()
    return ProductKind(variation.kind) if variation is not None else K.STOCK


async def content(
    order: Order, kind: ProductKind, vault: TokenVault
) -> tuple[list[str], tuple[str, bytes] | None, list[int]]:
    """(text items, attachment, ids for the nonce) of a non-stock order's delivery."""
    if kind == K.SHARED:
        variation = await Variation.get(id=order.variation_id)
        if not variation.shared_content_enc:
            raise product_files.FileRefused(f"variation {variation.id}: no shared content")
        return [vault.decrypt(variation.shared_content_enc).reveal()], None, [variation.id]
    if kind == K.FILE:
        loaded = await product_files.load_file(vault, order.variation_id)
        if loaded is None:
            raise product_files.FileRefused(f"variation {order.variation_id}: no file")
        row = await ProductFile.get(variation_id=order.variation_id).only("id")
        return [], loaded, [row.id]
    if kind == K.MANUAL:
        noted = await fulfilment.note_of(order.id, vault)
        if noted is None:
            return [], None, []
        return [noted[1]], None, [noted[0]]
    return [], None, []  # ROLE_ONLY: the confirmation is the message

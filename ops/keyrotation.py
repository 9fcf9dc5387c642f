"""Re-encrypt everything the token vault protects under the newest key (after rotation)."""

from __future__ import annotations

from collections.abc import Callable

from tortoise.transactions import in_transaction

from core.db import close_db, init_db
from core.settings import Settings
from core.vault import TokenVault
from fleet.models import BotInstance
from shop.models import FulfilmentNote, ProductFile, StockItem, Variation
from shop.models.mp_accounts import MPConnection

BATCH = 500


async def _rotate(
    vault: TokenVault,
    model,
    field: str,
    progress: Callable[[str], None],
    label: str,
    batch: int = BATCH,
) -> int:
    done = checked = 0
    last_id = 0
    present = {f"{field}__isnull": False}  # a nullable secret (shared content) may be unset
    total = await model.filter(**present).count()
    while True:
        rows = await model.filter(id__gt=last_id, **present).order_by("id").limit(batch)
        if not rows:
            break
        async with in_transaction() as conn:
            for row in rows:
                ciphertext = getattr(row, field)
                if ciphertext and vault.needs_rotation(ciphertext):  # blank: disconnected
                    # Conditional: a secret rewritten meanwhile (a Mercado Pago token
                    # refresh) is newer than what we read and is already under the new key.
                    done += (
                        await model.filter(id=row.id, **{field: ciphertext})
                        .using_db(conn)
                        .update(**{field: vault.rotate(ciphertext)})
                    )
        last_id = rows[-1].id
        checked += len(rows)
        progress(f"  {label}: {checked}/{total} checked")
    return done


async def rotate_all(
    settings: Settings, progress: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Return how many of each vault-encrypted secret were rewritten."""
    vault = TokenVault(settings.token_encryption_keys)
    await init_db(settings.database_url)
    try:
        return {
            "bot tokens": await _rotate(vault, BotInstance, "token_enc", progress, "bot tokens"),
            "stock items": await _rotate(vault, StockItem, "content_enc", progress, "stock items"),
            "shared contents": await _rotate(
                vault, Variation, "shared_content_enc", progress, "shared contents"
            ),
            # up to ~14 MB of ciphertext each: a few rows at a time
            "product files": await _rotate(
                vault, ProductFile, "content_enc", progress, "product files", batch=5
            ),
            "fulfilment notes": await _rotate(
                vault, FulfilmentNote, "note_enc", progress, "fulfilment notes"
            ),
            "Mercado Pago access tokens": await _rotate(
                vault, MPConnection, "access_token_enc", progress, "Mercado Pago access tokens"
            ),
            "Mercado Pago refresh tokens": await _rotate(
                vault, MPConnection, "refresh_token_enc", progress, "Mercado Pago refresh tokens"
            ),
        }
    finally:
        await close_db()

import hashlib
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from core.settings import load_settings
from core.vault import TokenVault
from fleet.models import BotInstance
from ops.keyrotation import rotate_all
from shop.models import Account, Product, ProductFile, StockItem, Tenant, Variation
from shop.models.mp_accounts import MPConnection

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


async def test_rotation_rewrites_every_secret_so_the_old_key_can_be_dropped(db, tmp_path):
    old_vault = TokenVault([OLD])
    owner = await Account.create(discord_id="1", username="s")
    tenant = await Tenant.create(owner=owner, name="Loja")
    tokens = [f"bot-token-{i}" for i in range(3)]
    for token in tokens:
        await BotInstance.create(tenant=tenant, token_enc=old_vault.encrypt(token))
    product = await Product.create(tenant=tenant, name="P")
    variation = await Variation.create(
        tenant=tenant,
        product=product,
        name="V",
        price_cents=100,
        shared_content_enc=old_vault.encrypt("https://curso.example/aula"),
    )
    await ProductFile.create(  # issue 16: a FILE variation's bytes (base64 in the token)
        tenant=tenant,
        variation=variation,
        name="guia.pdf",
        size=3,
        sha256="x",
        content_enc=old_vault.encrypt("UERG"),
    )
    await StockItem.create(
        tenant=tenant,
        variation=variation,
        content_enc=old_vault.encrypt("KEY-123"),
        content_hash=hashlib.sha256(b"KEY-123").hexdigest(),
    )
    # A connected store's Mercado Pago tokens, and a disconnected one's (blanked).
    connected_at = datetime.now(UTC)
    await MPConnection.create(
        tenant=tenant,
        mp_user_id="777",
        access_token_enc=old_vault.encrypt("APP_USR-access"),
        refresh_token_enc=old_vault.encrypt("TG-refresh"),
        expires_at=connected_at + timedelta(days=180),
        connected_at=connected_at,
    )
    other = await Tenant.create(owner=owner, name="Outra")
    await MPConnection.create(
        tenant=other,
        mp_user_id="778",
        access_token_enc="",
        refresh_token_enc="",
        expires_at=connected_at,
        connected_at=connected_at,
    )
    settings = load_settings(
        {"DATA_DIR": str(tmp_path), "DATABASE_URL": db, "TOKEN_ENCRYPTION_KEYS": f"{NEW},{OLD}"},
        env_file=None,
    )
    messages = []
    counts = await rotate_all(settings, progress=messages.append)
    assert counts == {
        "bot tokens": 3,
        "stock items": 1,
        "shared contents": 1,
        "product files": 1,
        "fulfilment notes": 0,
        "Mercado Pago access tokens": 1,
        "Mercado Pago refresh tokens": 1,
    }
    assert any("3/3" in m for m in messages)

    from core.db import init_db

    await init_db(db)
    new_only = TokenVault([NEW])
    stored = [i.token_enc for i in await BotInstance.all().order_by("id")]
    assert [new_only.decrypt(c).reveal() for c in stored] == tokens
    item = await StockItem.first()
    assert new_only.decrypt(item.content_enc).reveal() == "KEY-123"
    assert new_only.decrypt((await ProductFile.first()).content_enc).reveal() == "UERG"
    connection = await MPConnection.get(mp_user_id="777")
    assert new_only.decrypt(connection.access_token_enc).reveal() == "APP_USR-access"
    assert new_only.decrypt(connection.refresh_token_enc).reveal() == "TG-refresh"
    # A second run finds nothing left to do.
    assert set((await rotate_all(settings)).values()) == {0}
    await init_db(db)

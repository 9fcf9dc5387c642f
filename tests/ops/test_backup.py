"""Back up a running system with orders in flight; restore it elsewhere; nothing is lost."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tortoise.transactions import in_transaction

from core.db import close_db, init_db
from core.vault import TokenVault
from shop.models import (
    Account,
    LedgerEntry,
    Order,
    Payment,
    Product,
    StockItem,
    Tenant,
    Variation,
)
from shop.states import OrderStatus, StockStatus

KEY = Fernet.generate_key().decode()
VITRINE = str(Path(sys.executable).parent / "vitrine")


def cli(*args, env):
    return subprocess.run([VITRINE, *args], env=env, capture_output=True, text=True, timeout=120)


async def seed_orders(tenant, variation, product, start, count, vault):
    for n in range(start, start + count):
        order = await Order.create(
            tenant=tenant,
            product=product,
            variation=variation,
            interaction_id=f"i{n}",
            buyer_discord_id="42",
            quantity=1,
            unit_price_cents=990,
            total_cents=990,
            status=OrderStatus.DELIVERED if n % 2 else OrderStatus.PENDING,
        )
        await Payment.create(
            id=uuid.uuid4(),
            tenant=tenant,
            order=order,
            amount_cents=990,
            provider_payment_id=str(10_000 + n),
        )
        txn = uuid.uuid4()
        async with in_transaction() as conn:
            for account, amount in (("platform:clearing", -990), (f"seller:{tenant.id}", 990)):
                await LedgerEntry.create(
                    txn_id=txn,
                    idempotency_key=f"sale:{n}",
                    account=account,
                    tenant=tenant,
                    amount_cents=amount,
                    kind="sale",
                    order=order,
                    available_at=order.created_at,
                    using_db=conn,
                )
        content = f"KEY-{n:05d}"
        await StockItem.create(
            tenant=tenant,
            variation=variation,
            content_enc=vault.encrypt(content),
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
            status=StockStatus.SOLD if n % 2 else StockStatus.AVAILABLE,
            order=order if n % 2 else None,
        )


async def snapshot_rows():
    return {
        "orders": {o.id: (o.interaction_id, o.status, o.total_cents) for o in await Order.all()},
        "payments": {
            str(p.id): (p.provider_payment_id, p.amount_cents) for p in await Payment.all()
        },
        "ledger": {
            e.id: (e.account, e.amount_cents, e.idempotency_key) for e in await LedgerEntry.all()
        },
        "stock": {s.id: (s.content_hash, s.status, s.content_enc) for s in await StockItem.all()},
    }


@pytest.fixture
async def restore_target(database_url, tmp_path):
    """Where the backup is restored: a fresh directory (and a fresh PostgreSQL database)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite://{tmp_path / 'restored' / 'data' / 'vitrine.sqlite3'}"
        return
    import asyncpg

    from tests.helpers.db import PG_ADMIN_URL

    name = f"vitrine_restore_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_backup_with_orders_in_flight_restores_intact(database_url, restore_target, tmp_path):
    source = tmp_path / "source"
    env = {
        **os.environ,
        "DATA_DIR": str(source / "data"),
        "LOG_DIR": str(source / "logs"),
        "DATABASE_URL": database_url,
        "TOKEN_ENCRYPTION_KEYS": KEY,
    }
    (source / "logs").mkdir(parents=True)
    (source / "logs" / "portal.log").write_text('{"msg": "hello"}\n')
    vault = TokenVault([KEY])
    await init_db(database_url)
    owner = await Account.create(discord_id="1", username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja")
    product = await Product.create(tenant=tenant, name="Key")
    variation = await Variation.create(tenant=tenant, product=product, name="1m", price_cents=990)
    await seed_orders(tenant, variation, product, 0, 40, vault)
    before = await snapshot_rows()

    archive = tmp_path / "backup.tar.gz"
    backup = asyncio.create_task(asyncio.to_thread(cli, "backup", "--to", str(archive), env=env))
    n = 40
    while not backup.done():  # orders keep arriving while the backup runs
        await seed_orders(tenant, variation, product, n, 1, vault)
        n += 1
    result = await backup
    assert result.returncode == 0, result.stderr
    assert "backup written" in result.stdout
    source_rows = await snapshot_rows()
    await close_db()

    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert "logs/portal.log" in names
    assert 40 <= manifest["counts"]["orders"] <= n

    target = tmp_path / "restored"
    env2 = {
        **env,
        "DATA_DIR": str(target / "data"),
        "LOG_DIR": str(target / "logs"),
        "DATABASE_URL": restore_target,
    }
    result = cli("restore", str(archive), "--config", str(tmp_path / "none.conf"), env=env2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    assert (target / "logs" / "portal.log").read_text() == '{"msg": "hello"}\n'

    await init_db(restore_target)
    try:
        restored = await snapshot_rows()
    finally:
        await close_db()
    assert len(restored["orders"]) == manifest["counts"]["orders"]
    for table, rows in restored.items():
        # Everything written before the backup started is there...
        assert set(before[table]) <= set(rows), table
        # ...and every restored row is exactly what the running system had.
        for key, value in rows.items():
            assert source_rows[table][key] == value, (table, key)
    # Ledger transactions stay balanced: no half-written sale.
    assert sum(amount for _, amount, _ in restored["ledger"].values()) == 0
    stock = next(iter(restored["stock"].values()))
    assert TokenVault([KEY]).decrypt(stock[2]).reveal().startswith("KEY-")


def test_restore_refuses_something_that_is_not_a_backup(tmp_path):
    bogus = tmp_path / "x.tar.gz"
    bogus.write_bytes(b"not a tarball")
    env = {**os.environ, "DATA_DIR": str(tmp_path / "d"), "TOKEN_ENCRYPTION_KEYS": KEY}
    result = cli("restore", str(bogus), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "not a Vitrine backup" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""Account administration from the command line."""

from __future__ import annotations

from core import audit
from core.db import close_db, init_db
from shop.models import Account, AccountRole


async def make_admin(database_url: str, discord_id: str) -> bool:
    """Grant the admin role; return True when the account had to be created."""
    await init_db(database_url)
    try:
        account, created = await Account.get_or_create(
            discord_id=discord_id, defaults={"username": f"discord:{discord_id}"}
        )
        before = {"role": None if created else str(account.role)}
        account.role = AccountRole.ADMIN
        await account.save(update_fields=["role"])
        await audit.record(
            "cli:create-admin",
            "account.make_admin",
            "account",
            account.id,
            before=before,
            after={"role": "admin"},
        )
        return created
    finally:
        await close_db()

import os
import subprocess
import sys
from pathlib import Path

from core.db import close_db, init_db
from shop.models import Account, AccountRole

VITRINE = str(Path(sys.executable).parent / "vitrine")


def run(*args, env):
    return subprocess.run([VITRINE, *args], env=env, capture_output=True, text=True, timeout=60)


async def test_create_admin_creates_then_promotes(database_url, tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url}
    first = run("create-admin", "123456789012345678", env=env)
    assert first.returncode == 0 and "created admin" in first.stdout
    again = run("create-admin", "123456789012345678", env=env)
    assert again.returncode == 0 and "promoted" in again.stdout
    await init_db(database_url)
    try:
        account = await Account.get(discord_id="123456789012345678")
        assert account.role == AccountRole.ADMIN
        assert await Account.all().count() == 1
    finally:
        await close_db()


def test_bad_input_is_one_line_and_non_zero(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    bad = run("create-admin", "joao", env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "Discord user id" in bad.stderr
    bad_conf = run("migrate", env={**env, "PORTAL_PORT": "x"})
    assert bad_conf.returncode == 78 and "PORTAL_PORT" in bad_conf.stderr

"""What the zygote prepares before forking: the tortoise registry a worker reuses, the warm-up
that must leave no connection behind, and the pymalloc holes it fills."""

# The zygote test drives a subprocess with blocking pipes on purpose (its protocol is lines).
# ruff: noqa: ASYNC220, ASYNC230

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.vault import generate_key
from fleet.models import BotInstance
from shop.models.accounts import Account, Tenant

ROOT = Path(__file__).resolve().parents[2]


def run_script(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


async def test_forked_child_reuses_the_prepared_registry_and_reads_the_database(db):
    """prepare_models (probe included) in the parent; a forked child's init_db keeps the same
    model metadata, opens its own connection on its own loop and reads the real rows."""
    owner = await Account.create(discord_id="1" * 18, username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja")
    await BotInstance.create(tenant=tenant, name="Loja", token_enc="x")
    await BotInstance.create(tenant=tenant, name="Loja 2", token_enc="y")
    out = run_script(f"""
        import asyncio, json, os, sys, warnings
        warnings.simplefilter("error")  # a loop-switch warning would mean a shared connection
        from core.db import close_db, init_db, prepare_models
        from fleet.models import BotInstance
        prepare_models({db!r}, probe=True)
        before = id(BotInstance._meta.basequery)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            async def child():
                await init_db({db!r})
                names = sorted(await BotInstance.all().values_list("name", flat=True))
                reused = id(BotInstance._meta.basequery) == before
                await close_db()
                return {{"names": names, "reused": reused}}
            try:
                result = asyncio.run(child())
            except BaseException as exc:
                result = {{"error": repr(exc)}}
            os.write(w, json.dumps(result).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print(os.read(r, 65536).decode())
    """)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"names": ["Loja", "Loja 2"], "reused": True}


async def test_init_db_with_another_url_builds_afresh(tmp_path, sqlite_template):
    """The prepared registry is only for the URL it was built for."""
    import shutil

    first, second = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    shutil.copy(sqlite_template, first)
    shutil.copy(sqlite_template, second)
    out = run_script(f"""
        import asyncio
        from core.db import close_db, init_db, prepare_models
        from fleet.models import BotInstance
        from shop.models.accounts import Account, Tenant
        prepare_models("sqlite://{first}")
        async def main():
            await init_db("sqlite://{second}")
            owner = await Account.create(discord_id="2" * 18, username="s")
            tenant = await Tenant.create(owner=owner, name="B")
            await BotInstance.create(tenant=tenant, name="only-in-b", token_enc="x")
            await close_db()
            await init_db("sqlite://{first}")
            print(await BotInstance.all().count())
            await close_db()
        asyncio.run(main())
    """)
    assert out.strip() == "0"
    import sqlite3

    with sqlite3.connect(second) as conn:
        assert conn.execute("SELECT name FROM bot_instances").fetchall() == [("only-in-b",)]


def test_fill_pymalloc_holes_leaves_no_scattered_free_blocks():
    out = run_script("""
        from worker.zygote import fill_pymalloc_holes, pymalloc_free_blocks
        objs = [bytes(40) for _ in range(200_000)] + [object() for _ in range(50_000)]
        del objs[::2]  # a free block in every other slot
        before = sum(pymalloc_free_blocks().values())
        keep = fill_pymalloc_holes()
        after = sum(pymalloc_free_blocks().values())
        print(before, after, len(keep))
    """)
    before, after, kept = map(int, out.split())
    assert before > 100_000
    assert after < before // 50, (before, after)
    assert kept >= before - after


def _sockets(pid: int) -> list[str]:
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.append(target)
    return found


@pytest.mark.parametrize("redis_ok", [True, False], ids=["warm", "redis-down"])
async def test_zygote_warms_up_and_keeps_no_connection_for_its_children(
    tmp_path, database_url, redis_server, redis_ok
):
    """The zygote queries the database (SQLite or PostgreSQL) and Redis once while warming up;
    what it forks must not share a socket with it. With Redis unreachable it still starts
    (warm-up is best effort)."""
    redis_url = redis_server if redis_ok else "redis://127.0.0.1:9/0"  # discard port: refused
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": generate_key(),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "logs"),
        "ADMIN_API_TOKEN": "t" * 32,
        "PORTAL_SESSION_SECRET": "s" * 32,
        "MERCADOPAGO_WEBHOOK_SECRET": "w" * 32,
    }
    err = tmp_path / "zygote.err"
    with open(err, "wb") as errf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker.zygote"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errf,
        )
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        line = proc.stdout.readline()
        assert json.loads(line)["op"] == "ready", err.read_text()
        assert time.monotonic() - started < 30
        assert _sockets(proc.pid) == [], "a warm-up connection survived into the template"
        text = err.read_text()
        if redis_ok:
            assert "skipped" not in text and "not warmed up" not in text, text
        else:
            assert "_warm_redis skipped" in text
            assert "_warm_db skipped" not in text
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()

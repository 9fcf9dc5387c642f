"""Many processes writing one SQLite file (the embedded default): read-then-write transactions
queue for the lock instead of failing with "database is locked", and no update is lost."""

import asyncio
import sys

from core.db import close_db, init_db
from shop.models import Account

WORKER = """
import asyncio, sys
from tortoise.transactions import in_transaction
from core.db import init_db, close_db
from shop.models import Account

async def main(url, rounds):
    await init_db(url)
    for _ in range(rounds):
        async with in_transaction() as conn:
            account = await Account.get(discord_id="counter").using_db(conn)
            await asyncio.sleep(0.002)  # another process commits meanwhile
            account.username = str(int(account.username) + 1)
            await account.save(using_db=conn, update_fields=["username"])
    await close_db()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_concurrent_read_modify_write_from_many_processes_loses_nothing(sqlite_db):
    await Account.create(discord_id="counter", username="0")
    await close_db()
    procs, rounds = 6, 25
    running = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, sqlite_db, str(rounds), stderr=asyncio.subprocess.PIPE
        )
        for _ in range(procs)
    ]
    try:
        errors = [(await asyncio.wait_for(p.communicate(), 100))[1] for p in running]
    finally:
        for p in running:
            if p.returncode is None:
                p.kill()
                await p.wait()
    assert all(p.returncode == 0 for p in running), errors
    await init_db(sqlite_db)
    assert (await Account.get(discord_id="counter")).username == str(procs * rounds)

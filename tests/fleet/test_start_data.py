"""The start row the orchestrator hands a worker with its spawn request (fleet.start_data):
what goes through the zygote is exactly what the worker would have read, a malformed one is
not trusted, and a database that does not answer in time leaves the read to the worker."""

from __future__ import annotations

import asyncio
import json

from core.vault import TokenVault, generate_key
from fleet import start_data
from fleet import zygote_protocol as zp
from fleet.models import BotInstance
from shop.models.accounts import Account, Tenant


async def _instance(guild: str | None = "555", public: bool | None = True) -> tuple[int, str]:
    owner = await Account.create(discord_id="9001", username="seller")
    tenant = await Tenant.create(owner=owner, name="Loja", guild_id=guild)
    enc = TokenVault([generate_key()]).encrypt("MTE.token.secret")
    inst = await BotInstance.create(tenant=tenant, token_enc=enc, bot_public=public)
    return inst.id, enc


async def test_the_row_survives_the_spawn_request_unchanged(db):
    iid, enc = await _instance()
    row = await start_data.for_spawn(iid)
    assert row is not None and row["token_enc"] == enc and row["tenant__guild_id"] == "555"
    line = zp.spawn(7, iid, "node-a:3", row)
    assert b"MTE.token.secret" not in line  # ciphertext only
    seq, got_iid, lease, start = zp.spawn_args(zp.decode(line))
    assert (seq, got_iid, lease) == (7, iid, "node-a:3")
    assert start_data.checked(start) == await start_data.start_row(iid)
    # no row: the request is as before, and the worker reads the database
    assert "start" not in json.loads(zp.spawn(8, iid, None))
    assert zp.spawn_args(zp.decode(zp.spawn(8, iid, None)))[3] is None


async def test_a_store_without_a_guild_and_an_unknown_bot_public_pass_too(db):
    iid, _ = await _instance(guild=None, public=None)
    row = await start_data.for_spawn(iid)
    assert start_data.checked(json.loads(json.dumps(row))) == row


async def test_a_gone_instance_sends_nothing():
    assert start_data.checked(None) is None


async def test_a_malformed_row_is_not_trusted():
    good = {"token_enc": "gAAA", "tenant_id": 3, "bot_public": None, "tenant__guild_id": "1"}
    assert start_data.checked(good) == good
    for bad in (
        {**good, "token_enc": ""},
        {**good, "token_enc": 5},
        {**good, "tenant_id": "3"},
        {**good, "tenant_id": True},
        {**good, "bot_public": "yes"},
        {**good, "tenant__guild_id": [1]},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "tenant_id"},
        ["gAAA", 3],
        "gAAA",
    ):
        assert start_data.checked(bad) is None, bad


async def test_a_database_that_does_not_answer_in_time_leaves_the_read_to_the_worker(
    db, monkeypatch
):
    iid, _ = await _instance()

    async def stuck(instance_id: int) -> None:
        await asyncio.sleep(30)  # e.g. the connection waits on another write's lock

    monkeypatch.setattr(start_data, "start_row", stuck)
    monkeypatch.setattr(start_data, "READ_WAIT_S", 0.1)
    assert await asyncio.wait_for(start_data.for_spawn(iid), 2) is None


async def test_a_pass_reads_its_rows_once_and_a_later_start_reads_again(db, monkeypatch):
    first, enc = await _instance()
    rows = start_data.PassRows()
    await rows.read([first, 999_999])  # a gone instance is simply not there
    singles: list[int] = []

    async def single(instance_id: int) -> dict[str, object] | None:
        singles.append(instance_id)
        return None

    monkeypatch.setattr(start_data, "for_spawn", single)
    row = await rows.take(first, 1)
    assert row is not None and row["token_enc"] == enc and singles == []
    assert await rows.take(first, 1) is None and singles == [first]  # used once, then read
    assert await rows.take(999_999, 1) is None and singles == [first, 999_999]
    await rows.read([first])
    monkeypatch.setattr(start_data, "PREFETCH_FRESH_S", 0.0)  # e.g. a crash minutes later
    assert await rows.take(first, 1) is None and singles == [first, 999_999, first]
    await rows.read([])  # nothing to start: no query


async def test_a_token_edited_after_the_pass_read_is_not_started_with_the_old_one(db, monkeypatch):
    """The runbook's scenario B: the seller pastes a new token (config_version + 1) and the
    operator restarts the bot before the next pass: the row read by the pass is not used."""
    iid, old = await _instance()
    rows = start_data.PassRows()
    await rows.read([iid])
    new = TokenVault([generate_key()]).encrypt("MTE.new.token")
    await BotInstance.filter(id=iid).update(token_enc=new, config_version=2)
    row = await rows.take(iid, 2)  # the start the restart makes, with the new version
    assert row is not None and row["token_enc"] == new
    await rows.read([iid])
    rows.forget(iid)  # a control command re-read the instance
    monkeypatch.setattr(start_data, "for_spawn", lambda iid: _none())
    assert await rows.take(iid, 2) is None


async def _none() -> None:
    return None

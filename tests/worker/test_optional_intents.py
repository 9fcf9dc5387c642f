"""Optional privileged intents (worker.optional_intents): asked for only when the application's
flags say the seller enabled them, so a bot never closes with 4014 for one; a RESUME keeps
the intents stored with its session and reads nothing."""

from __future__ import annotations

import disnake
import pytest
from disnake.ext import commands

from worker import optional_intents
from worker.extensions import required_intents

MEMBERS_VERIFIED, MEMBERS_LIMITED = 1 << 14, 1 << 15
GUILDS = disnake.Intents(guilds=True)


@pytest.mark.parametrize(
    ("flags", "members"),
    [
        (MEMBERS_LIMITED, True),
        (MEMBERS_VERIFIED, True),
        (1 << 19, False),
        (0, False),
        (None, False),
    ],
)
def test_members_is_asked_for_only_when_a_members_flag_is_set(flags, members):
    intents = optional_intents.choose(GUILDS, ("members",), flags, None)
    assert intents.members is members and intents.guilds
    assert not intents.message_content  # another flag's bit turns on nothing else


def test_a_stored_session_keeps_its_intents_whatever_the_flags_say():
    stored = disnake.Intents(guilds=True, members=True).value
    assert optional_intents.choose(GUILDS, ("members",), 0, stored).members
    assert not optional_intents.choose(GUILDS, ("members",), MEMBERS_LIMITED, GUILDS.value).members


def test_the_storefront_declares_members_optional_never_required():
    modules = ["worker.extensions.status", "worker.extensions.storefront"]
    assert optional_intents.declared(modules) == ("members",)
    assert not required_intents(modules).members


def test_an_optional_intent_that_is_not_privileged_is_refused(monkeypatch):
    import worker.extensions.status as status

    monkeypatch.setattr(status, "OPTIONAL_INTENTS", ("guild_messages",), raising=False)
    with pytest.raises(ValueError, match="guild_messages"):
        optional_intents.declared(["worker.extensions.status"])


@pytest.fixture
async def app(sandbox, dc, monkeypatch):
    monkeypatch.setattr(disnake.http.Route, "BASE", sandbox.discord_api_base)
    return await dc.create_bot("Loja")


async def _settled(token: str, stored: int | None) -> disnake.Intents:
    client = commands.InteractionBot(intents=disnake.Intents(guilds=True))
    try:
        await client.login(token)
        await optional_intents.settle(client, ("members",), stored)
        return client._connection._intents
    finally:
        await client.close()


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
async def test_settle_reads_the_application_flags_from_discord(dc, app, enabled):
    if enabled:  # "Server Members Intent" switched on (Developer Portal, Bot page)
        await dc.set_faults(app, privileged_intents=["members"])
    assert (await _settled(app.token, None)).members is enabled
    assert len(await dc.requests(app, "GET", "/applications/@me")) == 1


async def test_settle_with_a_stored_session_reads_nothing(dc, app):
    stored = disnake.Intents(guilds=True, members=True).value
    assert (await _settled(app.token, stored)).members
    assert await dc.requests(app, "GET", "/applications/@me") == []


async def test_the_session_is_stored_with_its_intents_for_a_successor(redis_client):
    from worker.resume import SessionStore

    store = SessionStore(redis_client, 8)
    await store.save("s1", "ws://gw", 3, 123, disnake.Intents(guilds=True, members=True).value)
    loaded = await store.load()
    assert loaded is not None and disnake.Intents._from_value(loaded.intents or 0).members
    await store.save("s1", "ws://gw", 4, 123)  # a session stored before this release
    assert (await store.load()).intents is None  # type: ignore[union-attr]
    await store.clear()

"""The sandbox keeps a gateway session after its socket drops, as Discord does: another
connection may RESUME it (replay, then RESUMED) until the resume window passes; an expired
or unknown session gets op 9 `d: false`, a sequence from the future closes 4007, and the
`refuse_resume` fault refuses RESUME the ways Discord can (op 9, 4007, 4009)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.sandbox.test_discord_gateway import RawGateway, _connect

INVALID_SESSION = {"op": 9, "d": False, "s": None, "t": None}


async def _session(session: aiohttp.ClientSession, sandbox, dc):
    bot = await dc.create_bot("Loja", privileged_intents=["members"])
    guild = await dc.create_guild("G", channels=["loja"], bots=[bot])
    gw = await _connect(session, sandbox.discord_base, False)
    ready = await gw.identify(bot.token, intents=513 | (1 << 1))
    assert (await gw.recv())["t"] == "GUILD_CREATE"  # s=2
    return bot, guild, gw, ready["d"]["session_id"]


async def _resume(session, sandbox, token: str, session_id: str, seq: int) -> RawGateway:
    gw = await _connect(session, sandbox.discord_base, False)
    await gw.send(6, {"token": token, "session_id": session_id, "seq": seq})
    return gw


async def test_resume_session_dropped_on_another_connection_replays_member_join(sandbox, dc):
    async with aiohttp.ClientSession() as session:
        bot, guild, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=4000)  # not 1000: the session stays resumable
        joiner = await dc.create_user("novo")
        await dc.add_member(guild, joiner["id"])
        gw2 = await _resume(session, sandbox, bot.token, sid, 2)
        replayed = await gw2.recv()
        assert (replayed["t"], replayed["s"]) == ("GUILD_MEMBER_ADD", 3)
        resumed = await gw2.recv()
        assert (resumed["t"], resumed["s"]) == ("RESUMED", 4)
        info = await dc.bot_info(bot)
        assert (info["identify_count"], info["resume_count"], info["replayed_events"]) == (1, 1, 1)
        await gw2.ws.close()


async def test_dropped_session_expires_after_the_resume_window(sandbox, dc):
    await dc.configure(session_resume_window_s=0)
    async with aiohttp.ClientSession() as session:
        bot, _, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=4000)
        gw2 = await _resume(session, sandbox, bot.token, sid, 2)
        assert await gw2.recv() == INVALID_SESSION
        await gw2.ws.close()
    assert (await dc.bot_info(bot))["invalid_sessions"] == 1


async def test_resume_with_a_sequence_never_sent_closes_4007_and_ends_the_session(sandbox, dc):
    async with aiohttp.ClientSession() as session:
        bot, _, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=4000)
        gw2 = await _resume(session, sandbox, bot.token, sid, 99)
        assert await gw2.recv() == {"closed": 4007}
        gw3 = await _resume(session, sandbox, bot.token, sid, 2)
        assert await gw3.recv() == INVALID_SESSION  # the session is gone
        await gw3.ws.close()


async def test_events_that_fell_out_of_the_buffer_cannot_be_replayed(sandbox, dc):
    await dc.configure(session_buffer_size=2)
    async with aiohttp.ClientSession() as session:
        bot, guild, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=4000)
        for n in range(3):  # s=3, 4, 5: the buffer keeps 4 and 5
            await dc.add_member(guild, (await dc.create_user(f"u{n}"))["id"])
        gw2 = await _resume(session, sandbox, bot.token, sid, 2)
        assert await gw2.recv() == INVALID_SESSION
        await gw2.ws.close()


async def test_client_closing_with_1000_ends_its_session(sandbox, dc):
    async with aiohttp.ClientSession() as session:
        bot, _, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=1000)
        gw2 = await _resume(session, sandbox, bot.token, sid, 2)
        assert await gw2.recv() == INVALID_SESSION
        await gw2.ws.close()


@pytest.mark.parametrize("refusal", [9, 4007, 4009])
async def test_refuse_resume_fault(sandbox, dc, refusal):
    async with aiohttp.ClientSession() as session:
        bot, _, gw, sid = await _session(session, sandbox, dc)
        await gw.ws.close(code=4000)
        await dc.set_faults(bot, refuse_resume=refusal)
        gw2 = await _resume(session, sandbox, bot.token, sid, 2)
        expected = INVALID_SESSION if refusal == 9 else {"closed": refusal}
        assert await gw2.recv() == expected
        await gw2.ws.close()
        # the refused session is over; a new login works
        gw3 = await _connect(session, sandbox.discord_base, False)
        assert (await gw3.identify(bot.token))["t"] == "READY"
        await gw3.ws.close()
    assert (await dc.bot_info(bot))["identify_count"] == 2

"""worker.resume: one test per patched disnake behaviour (first connection RESUMEs a stored
session; no stored session IDENTIFYs and announces it; a refused RESUME falls back to one
IDENTIFY), the replay gate (claim once, drop late replays, fail open without Redis), the
session store's one-beat lag, and the disnake pin."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
import disnake
import pytest
from disnake.ext import commands

from fleet import keys
from tests.sandbox.test_discord_gateway import _connect
from worker import resume
from worker.resume import ReplayGate, ResumeState, SessionStore, StoredSession

ROOT = Path(__file__).resolve().parents[2]


def test_disnake_is_pinned_to_the_version_the_patch_was_checked_against():
    pin = re.search(r'"disnake==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin and pin.group(1) == resume.DISNAKE_CHECKED == disnake.__version__
    with pytest.raises(RuntimeError):
        resume.check_disnake("2.13.0")


async def _raw_session(sandbox, bot) -> tuple[str, str]:
    """A session opened by a 'previous process', whose socket then drops (code 4000)."""
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, False)
        ready = await gw.identify(bot.token)
        await gw.recv()  # GUILD_CREATE
        await gw.ws.close(code=4000)
    return ready["d"]["session_id"], ready["d"]["resume_gateway_url"]


async def _run_client(sandbox, token, redis_client, plan, monkeypatch, until: str, close=None):
    monkeypatch.setattr(disnake.http.Route, "BASE", sandbox.discord_api_base)
    # install() patches disnake.client for the process: undo it after the test
    monkeypatch.setattr(disnake.client, "DiscordWebSocket", disnake.client.DiscordWebSocket)
    client = commands.InteractionBot(intents=disnake.Intents(guilds=True))
    rs = resume.install(client, redis_client, plan)
    events: list[str] = []
    done = asyncio.Event()

    async def on_socket_event_type(event: str) -> None:
        events.append(event)
        if event == until:
            done.set()

    async def on_gateway_identify() -> None:
        events.append("identify-sent")

    client.add_listener(on_socket_event_type)
    client.add_listener(on_gateway_identify)
    runner = asyncio.create_task(client.start(token))
    try:
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)  # the parser after the listener
        events.append(f"is_ready={client.is_ready()}")
        if client.ws is not None:
            events.append(f"session={client.ws.session_id}")
    finally:
        await (close or disnake.Client.close)(client)
        await asyncio.wait({runner}, timeout=5)
    return rs, events


@pytest.fixture
async def bot(sandbox, dc):
    app = await dc.create_bot("Loja")
    await dc.create_guild("G", channels=["loja"], bots=[app])
    return app


async def test_first_connection_resumes_the_stored_session(
    sandbox, dc, bot, redis_client, monkeypatch
):
    sid, url = await _raw_session(sandbox, bot)
    plan = StoredSession(sid, url, 2, int(bot.application_id), time.time())
    rs, events = await _run_client(sandbox, bot.token, redis_client, plan, monkeypatch, "RESUMED")
    assert "identify-sent" not in events and "READY" not in events
    assert rs.mode == "resume" and rs.plan is None  # consumed
    assert "is_ready=True" in events  # what READY would have started ran (commands sync)
    info = await dc.bot_info(bot)
    assert (info["identify_count"], info["resume_count"]) == (1, 1)


async def test_without_a_stored_session_it_identifies_and_says_so(
    sandbox, dc, bot, redis_client, monkeypatch
):
    rs, events = await _run_client(sandbox, bot.token, redis_client, None, monkeypatch, "READY")
    assert events.index("identify-sent") < events.index("READY")
    assert rs.mode == "identify"
    assert (await dc.bot_info(bot))["identify_count"] == 1


async def test_refused_resume_falls_back_to_one_identify(
    sandbox, dc, bot, redis_client, monkeypatch
):
    plan = StoredSession("gone", f"ws://{sandbox.discord_base.split('://')[1]}/gateway", 5, None, 0)
    rs, events = await _run_client(sandbox, bot.token, redis_client, plan, monkeypatch, "READY")
    assert events.count("identify-sent") == 1 and rs.mode == "identify"
    info = await dc.bot_info(bot)
    assert (info["identify_count"], info["invalid_sessions"]) == (1, 1)


def _interaction(age_s: float) -> dict:
    ms = int((time.time() - age_s) * 1000) - 1420070400000
    return {"id": str(ms << 22), "type": 3}


async def test_gate_acts_once_on_an_interaction_claimed_before_the_crash(redis_client):
    seen: list[str] = []
    first, second = ReplayGate(redis_client), ReplayGate(redis_client)  # two processes
    data = _interaction(0.2)
    await first.admit(data, lambda d: seen.append(d["id"]), False)
    await second.admit(dict(data), lambda d: seen.append(d["id"]), True)
    assert seen == [data["id"]] and second.dropped_duplicate == 1
    assert await redis_client.ttl(keys.interaction_claim(data["id"])) > 0


async def test_gate_drops_a_replayed_interaction_past_its_3s_window(redis_client):
    seen: list[str] = []
    gate = ReplayGate(redis_client)
    await gate.admit(_interaction(3.5), lambda d: seen.append(d["id"]), True)
    fresh = _interaction(1.0)
    await gate.admit(fresh, lambda d: seen.append(d["id"]), True)
    assert seen == [fresh["id"]] and gate.dropped_late == 1
    old_live = _interaction(10)  # a live one is never judged by its age (clock skew)
    await gate.admit(old_live, lambda d: seen.append(d["id"]), False)
    assert seen[-1] == old_live["id"]


async def test_gate_judges_an_interaction_replayed_before_resumed_as_a_replay(redis_client):
    """RESUMED can be parsed before the claim's round trip ends: the replay is decided when
    the frame arrives, not when its task runs."""
    parsers = {"INTERACTION_CREATE": lambda d: seen.append(d["id"])}
    parsers["READY"] = parsers["RESUMED"] = lambda d: None
    seen: list[str] = []
    gate = ReplayGate(redis_client)
    gate.install(parsers)
    gate.replaying = True
    parsers["INTERACTION_CREATE"](_interaction(3.5))  # replayed, too late
    parsers["RESUMED"]({})  # the replay is over before the claim task ran
    await asyncio.gather(*gate._tasks)
    assert seen == [] and gate.dropped_late == 1


async def test_gate_handles_the_interaction_when_redis_is_down():
    import redis.asyncio as aioredis

    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    seen: list[str] = []
    await ReplayGate(dead).admit(_interaction(0), lambda d: seen.append(d["id"]), False)
    await dead.aclose()
    assert len(seen) == 1


async def test_stored_sequence_lags_one_beat_and_round_trips(redis_client):
    rs = ResumeState(None, ReplayGate(redis_client), None, start_seq=1)  # began with READY
    # the first store goes back to where the session began: events seen before the first beat
    # may still have handlers running
    assert [rs.handled_seq("s1", n) for n in (3, 9, 14)] == [1, 3, 9]
    rs.start_seq = 40  # the process then resumed another session from seq 40
    assert rs.handled_seq("s2", 44) == 40
    store = SessionStore(redis_client, 7)
    await store.save("s2", "ws://gw", 2, 123)
    loaded = await store.load()
    assert loaded is not None and (loaded.session_id, loaded.seq, loaded.app_id) == ("s2", 2, 123)
    assert 0 < await redis_client.ttl(keys.gateway_session(7)) <= keys.GATEWAY_SESSION_TTL
    await store.clear()
    assert await store.load() is None


@pytest.mark.parametrize("handover", [True, False], ids=["handover", "clean-stop"])
async def test_a_handover_leaves_the_session_resumable_a_clean_stop_ends_it(
    sandbox, dc, bot, redis_client, monkeypatch, handover
):
    close = resume.close_keeping_session if handover else None
    _, events = await _run_client(
        sandbox, bot.token, redis_client, None, monkeypatch, "READY", close=close
    )
    sid = next(e.split("=", 1)[1] for e in events if e.startswith("session="))
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, False)
        await gw.send(6, {"token": bot.token, "session_id": sid, "seq": 1})
        first = await gw.recv()
        if handover:  # the GUILD_CREATE it had seen is replayed, then RESUMED
            assert (first["t"], (await gw.recv())["t"]) == ("GUILD_CREATE", "RESUMED")
        else:
            assert first == {"op": 9, "d": False, "s": None, "t": None}
        await gw.ws.close(code=4000)

"""Gateway wire behaviour checked with a bare aiohttp websocket client."""

from __future__ import annotations

import asyncio
import json
import zlib

import aiohttp
import httpx
import pytest


class RawGateway:
    """Minimal gateway client: decodes zlib-stream or plain JSON frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compressed: bool) -> None:
        self.ws = ws
        self.inflate = zlib.decompressobj() if compressed else None
        self.raw_frames: list[bytes] = []

    async def recv(self, wait_s: float = 5.0) -> dict:
        msg = await self.ws.receive(timeout=wait_s)
        if msg.type is aiohttp.WSMsgType.CLOSE:
            return {"closed": msg.data}
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return {"closed": self.ws.close_code}
        if self.inflate is not None:
            assert msg.type is aiohttp.WSMsgType.BINARY
            self.raw_frames.append(msg.data)
            return json.loads(self.inflate.decompress(msg.data))
        assert msg.type is aiohttp.WSMsgType.TEXT
        return json.loads(msg.data)

    async def send(self, op: int, d) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))

    async def identify(self, token: str, intents: int = 513) -> dict:
        await self.send(
            2,
            {
                "token": token,
                "intents": intents,
                "properties": {"os": "linux", "browser": "t", "device": "t"},
            },
        )
        return await self.recv()


async def _connect(session: aiohttp.ClientSession, base: str, compressed: bool) -> RawGateway:
    url = f"ws://{base.split('://')[1]}/gateway?v=10&encoding=json"
    ws = await session.ws_connect(url + ("&compress=zlib-stream" if compressed else ""))
    gw = RawGateway(ws, compressed)
    hello = await gw.recv()
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
    return gw


@pytest.mark.parametrize("compressed", [True, False], ids=["zlib-stream", "plain-json"])
async def test_hello_heartbeat_identify_ready_guild_create(sandbox, dc, compressed):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", channels=["loja"], bots=[bot])
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, compressed)
        await gw.send(1, None)
        assert (await gw.recv())["op"] == 11
        ready = await gw.identify(bot.token)
        assert (ready["t"], ready["s"]) == ("READY", 1)
        assert ready["d"]["application"]["id"] == bot.application_id
        assert ready["d"]["guilds"] == [{"id": guild.id, "unavailable": True}]
        gc = await gw.recv()
        assert (gc["t"], gc["s"]) == ("GUILD_CREATE", 2)
        role = gc["d"]["roles"][0]
        assert set(role["colors"]) == {"primary_color", "secondary_color", "tertiary_color"}
        assert [c["name"] for c in gc["d"]["channels"]] == ["loja"]
        if compressed:
            assert all(f.endswith(b"\x00\x00\xff\xff") for f in gw.raw_frames)
        await gw.ws.close()


async def test_bad_token_closes_4004(sandbox):
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, False)
        assert await gw.identify("wrong") == {"closed": 4004}


async def test_resume_replays_missed_events_and_unknown_session_is_invalid(sandbox, dc):
    bot = await dc.create_bot("Loja", privileged_intents=["message_content"])
    guild = await dc.create_guild("G", channels=["loja"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, False)
        ready = await gw.identify(bot.token, intents=513 | (1 << 15))
        await gw.recv()  # GUILD_CREATE, s=2
        await dc.disconnect(bot, 4000)
        assert (await gw.recv())["closed"] == 4000
        await buyer.say(guild.channel("loja"), "missed while away")

        gw2 = await _connect(session, sandbox.discord_base, False)
        await gw2.send(6, {"token": bot.token, "session_id": ready["d"]["session_id"], "seq": 2})
        replayed = await gw2.recv()
        assert (replayed["t"], replayed["s"]) == ("MESSAGE_CREATE", 3)
        assert replayed["d"]["content"] == "missed while away"
        assert (await gw2.recv())["t"] == "RESUMED"
        info = await dc.bot_info(bot)
        assert (info["identify_count"], info["resume_count"]) == (1, 1)
        await gw2.ws.close()

        gw3 = await _connect(session, sandbox.discord_base, False)
        await gw3.send(6, {"token": bot.token, "session_id": "nope", "seq": 1})
        assert (await gw3.recv()) == {"op": 9, "d": False, "s": None, "t": None}
        await gw3.ws.close()


async def test_session_start_limit_counts_down_and_resets(sandbox, dc):
    bot = await dc.create_bot("Loja")
    headers = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base, headers=headers) as http:

        async def remaining() -> int:
            body = (await http.get("/gateway/bot")).json()
            assert body["session_start_limit"]["total"] == 1000
            assert body["session_start_limit"]["max_concurrency"] == 1
            return body["session_start_limit"]["remaining"]

        assert await remaining() == 1000
        async with aiohttp.ClientSession() as session:
            for expected in (999, 998, 997):
                gw = await _connect(session, sandbox.discord_base, True)
                assert (await gw.identify(bot.token))["t"] == "READY"
                await gw.ws.close()
                assert await remaining() == expected
        assert (await dc.bot_info(bot))["identify_count"] == 3

        await dc.set_session_start_limit(bot, reset_after_ms=300)
        reset_after = (await http.get("/gateway/bot")).json()["session_start_limit"]
        assert 0 < reset_after["reset_after"] <= 300
        await asyncio.sleep(0.4)
        assert await remaining() == 1000


async def test_exhausted_budget_gets_invalid_session(sandbox, dc):
    bot = await dc.create_bot("Loja")
    await dc.set_session_start_limit(bot, remaining=0)
    async with aiohttp.ClientSession() as session:
        gw = await _connect(session, sandbox.discord_base, False)
        assert (await gw.identify(bot.token))["op"] == 9
        await gw.ws.close()
    assert (await dc.bot_info(bot))["identify_count"] == 0

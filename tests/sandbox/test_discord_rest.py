"""REST wire facts disnake depends on, checked with plain httpx."""

from __future__ import annotations

import json

import httpx
import pytest


@pytest.fixture
async def world(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", channels=["loja"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    headers = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base, headers=headers) as http:
        yield {"bot": bot, "guild": guild, "buyer": buyer, "http": http}


async def test_json_content_type_is_exact_and_401_shape(sandbox, world):
    me = await world["http"].get("/users/@me")
    assert me.headers["content-type"] == "application/json"
    assert me.json()["id"] == world["bot"].user_id and me.json()["bot"] is True
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base) as anon:
        bad = await anon.get("/users/@me", headers={"Authorization": "Bot wrong"})
    assert (bad.status_code, bad.json()) == (401, {"message": "401: Unauthorized", "code": 0})
    assert bad.headers["content-type"] == "application/json"


async def test_unknown_route_is_json_404_and_logged(world, dc):
    resp = await world["http"].get("/guilds/1/audit-logs")
    assert resp.status_code == 404 and resp.json()["message"] == "404: Not Found"
    assert "GET /api/v10/guilds/1/audit-logs" in (await dc.health())["unknown_routes"]


async def test_multipart_message_with_files(world, dc):
    channel = world["guild"].channel("loja")
    payload = {
        "content": "segue",
        "attachments": [{"id": 0, "filename": "a.txt"}, {"id": 1, "filename": "b.bin"}],
    }
    files = {"files[0]": ("a.txt", b"alpha"), "files[1]": ("b.bin", b"\x00\x01")}
    resp = await world["http"].post(
        f"/channels/{channel}/messages", data={"payload_json": json.dumps(payload)}, files=files
    )
    assert resp.status_code == 200
    msg = resp.json()
    assert [a["filename"] for a in msg["attachments"]] == ["a.txt", "b.bin"]
    stored = (await dc.channel_messages(channel))[0]
    assert [await dc.fetch_attachment(a) for a in stored.attachments] == [b"alpha", b"\x00\x01"]


async def test_empty_message_and_missing_permissions(world, dc):
    http, channel = world["http"], world["guild"].channel("loja")
    empty = await http.post(f"/channels/{channel}/messages", json={"content": ""})
    assert (empty.status_code, empty.json()["code"]) == (400, 50006)
    await dc.set_faults(world["bot"], missing_permissions=[channel])
    denied = await http.post(f"/channels/{channel}/messages", json={"content": "x"})
    assert (denied.status_code, denied.json()) == (
        403,
        {"message": "Missing Permissions", "code": 50013},
    )


async def test_dm_to_user_sharing_no_guild_is_50007(world, dc):
    stranger = await dc.create_user("stranger")
    dm = (
        await world["http"].post("/users/@me/channels", json={"recipient_id": stranger["id"]})
    ).json()
    assert dm["type"] == 1 and dm["recipients"][0]["id"] == stranger["id"]
    resp = await world["http"].post(f"/channels/{dm['id']}/messages", json={"content": "oi"})
    assert resp.status_code == 403 and resp.json()["code"] == 50007


async def test_rate_limit_response_shape(world, dc):
    await dc.add_fault_rule(
        world["bot"], "ratelimit", method="GET", path="/users/@me", retry_after=1.5, count=2
    )
    first = await world["http"].get("/users/@me")
    assert first.status_code == 429
    assert first.json() == {
        "message": "You are being rate limited.",
        "retry_after": 1.5,
        "global": False,
    }
    assert first.headers["retry-after"] == "2" and first.headers["via"]
    assert (await world["http"].get("/users/@me")).status_code == 429
    assert (await world["http"].get("/users/@me")).status_code == 200


async def test_bulk_overwrite_assigns_stable_ids(world):
    http, app_id = world["http"], world["bot"].application_id
    cmds = [{"name": "comprar", "description": "Buy", "type": 1}]
    first = (await http.put(f"/applications/{app_id}/commands", json=cmds)).json()
    again = (await http.put(f"/applications/{app_id}/commands", json=cmds)).json()
    assert first[0]["id"].isdigit() and first[0]["id"] == again[0]["id"]
    assert first[0]["application_id"] == app_id
    listed = (
        await http.get(f"/applications/{app_id}/commands", params={"with_localizations": 1})
    ).json()
    assert [c["name"] for c in listed] == ["comprar"]
    bad = await http.put(f"/applications/{app_id}/commands", json=[{"name": "Bad Name"}])
    assert bad.status_code == 400 and bad.json()["code"] == 50035
    # localized names follow the name's rules, per locale (and only Discord's locales)
    for localizations in ({"en-US": "My Orders"}, {"en": "my-orders"}):
        cmd = {"name": "meus-pedidos", "description": "d", "name_localizations": localizations}
        refused = await http.put(f"/applications/{app_id}/commands", json=[cmd])
        assert refused.status_code == 400 and refused.json()["code"] == 50035
    cmd = {"name": "meus-pedidos", "description": "d", "name_localizations": {"en-US": "my-orders"}}
    assert (await http.put(f"/applications/{app_id}/commands", json=[cmd])).status_code == 200


async def test_interaction_callback_rules(sandbox, world, dc):
    http, app_id = world["http"], world["bot"].application_id
    await http.put(f"/applications/{app_id}/commands", json=[{"name": "ping", "description": "p"}])
    buyer, guild = world["buyer"], world["guild"]
    result = await buyer.slash(world["bot"], guild, "loja", "ping")
    rec = await dc.interaction(result.id)
    assert rec["callback_type"] is None
    state = sandbox.discord_state  # the token reaches bots via the gateway; read it in-process
    token = state.interactions[result.id].token
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base) as anon:
        url = f"/interactions/{result.id}/{token}/callback"
        ok = await anon.post(url, json={"type": 5, "data": {"flags": 64}})
        assert ok.status_code == 204
        again = await anon.post(url, json={"type": 4, "data": {"content": "x"}})
        assert (again.status_code, again.json()["code"]) == (400, 40060)
        follow = await anon.post(
            f"/webhooks/{app_id}/{token}", params={"wait": "true"}, json={"content": "pronto"}
        )
        assert follow.status_code == 200 and follow.json()["content"] == "pronto"
    reply = await result.wait_reply()
    assert (reply.content, reply.ephemeral) == ("pronto", True)

    await dc.configure(interaction_ack_timeout_s=0.0)
    late = await buyer.slash(world["bot"], guild, "loja", "ping")
    late_token = state.interactions[late.id].token
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base) as anon:
        resp = await anon.post(
            f"/interactions/{late.id}/{late_token}/callback",
            json={"type": 4, "data": {"content": "tarde"}},
        )
    assert (resp.status_code, resp.json()["code"]) == (404, 10062)
    assert (await dc.interaction(late.id))["error"] == "timeout"


async def test_private_thread_fallback_delivery(world, dc):
    http, channel = world["http"], world["guild"].channel("loja")
    thread = await http.post(
        f"/channels/{channel}/threads", json={"name": "entrega-ana", "type": 12, "invitable": False}
    )
    assert thread.status_code == 201
    body = thread.json()
    assert (body["type"], body["parent_id"]) == (12, channel)
    added = await http.put(f"/channels/{body['id']}/thread-members/{world['buyer'].id}")
    assert added.status_code == 204
    sent = await http.post(f"/channels/{body['id']}/messages", json={"content": "sua chave"})
    assert sent.status_code == 200
    assert [m.content for m in await dc.channel_messages(body["id"])] == ["sua chave"]

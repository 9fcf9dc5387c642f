"""The Discord stand-in refuses a message file over 10 MiB as Discord does (issue 16)."""

from __future__ import annotations

import json

import httpx

from sandbox.discord.messages import FILE_LIMIT


async def test_a_file_over_10_mib_is_413_40005_and_one_at_the_limit_is_stored(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("G", channels=["loja"], bots=[bot])
    await dc.buyer("ana", guilds=[guild])
    channel = guild.channel("loja")
    payload = json.dumps({"attachments": [{"id": 0, "filename": "f.bin"}]})
    headers = {"Authorization": f"Bot {bot.token}"}
    async with httpx.AsyncClient(base_url=sandbox.discord_api_base, headers=headers) as http:
        over = await http.post(
            f"/channels/{channel}/messages",
            data={"payload_json": payload},
            files={"files[0]": ("f.bin", b"x" * (FILE_LIMIT + 1))},
        )
        assert (over.status_code, over.json()["code"]) == (413, 40005)
        at_limit = await http.post(
            f"/channels/{channel}/messages",
            data={"payload_json": payload},
            files={"files[0]": ("f.bin", b"y" * FILE_LIMIT)},
        )
    assert at_limit.status_code == 200
    stored = (await dc.channel_messages(channel))[0]
    assert len(await dc.fetch_attachment(stored.attachments[0])) == FILE_LIMIT

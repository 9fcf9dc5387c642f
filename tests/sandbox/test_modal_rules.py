"""The Discord stand-in answers a MODAL (9) callback as Discord documents it
(https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object-modal):
title at most 45 characters, custom_id at most 100, 1 to 5 components, and never in answer to a
MODAL_SUBMIT."""

from __future__ import annotations

import httpx


def _modal(title: str = "Sua avaliação", custom_id: str = "vt:rtm:1:5") -> dict:
    text = {"type": 4, "custom_id": "comment", "label": "Comentário", "style": 2}
    return {
        "type": 9,
        "data": {
            "custom_id": custom_id,
            "title": title,
            "components": [{"type": 1, "components": [text]}],
        },
    }


async def test_modal_callback_limits_and_no_modal_after_a_modal_submit(sandbox, dc):
    bot = await dc.create_bot("Loja")
    guild = await dc.create_guild("Servidor", channels=["loja"], bots=[bot])
    buyer = await dc.buyer("ana", guilds=[guild])
    auth = {"Authorization": f"Bot {bot.token}"}
    base = sandbox.discord_api_base
    state = sandbox.discord_state
    async with httpx.AsyncClient(base_url=base, headers=auth) as api:
        button = {"type": 2, "style": 2, "label": "5", "custom_id": "vt:rate:1:5"}
        posted = await api.post(
            f"/channels/{guild.channel('loja')}/messages",
            json={"content": "?", "components": [{"type": 1, "components": [button]}]},
        )
        message = posted.json()

        async def answer(result, body: dict) -> httpx.Response:
            inter = state.interactions[result.id]
            return await api.post(f"/interactions/{inter.id}/{inter.token}/callback", json=body)

        click = await buyer.click(message, "vt:rate:1:5")
        assert (await answer(click, _modal(title="x" * 46))).status_code == 400
        assert (await answer(click, _modal(custom_id="x" * 101))).status_code == 400
        assert (await answer(click, _modal())).status_code == 204
        submitted = await buyer.submit_modal(click, {"comment": "bom"})
        refused = await answer(submitted, _modal())
        assert refused.status_code == 400 and refused.json()["code"] == 50035

"""The bot page tells the seller about the optional Server Members intent: what it buys
(roles back within seconds when a buyer rejoins; otherwise within the hour), how to switch
it on, and whether it is on, read from the application's flags when the token was saved."""

from __future__ import annotations

import pytest

from tests.helpers.portal import make_seller, portal_with_discord


@pytest.fixture
async def env(tmp_path, db, redis_url):
    async with portal_with_discord(tmp_path, db, redis_url) as pair:
        yield pair


@pytest.mark.parametrize("enabled", [True, False], ids=["on", "off"])
async def test_bot_page_says_whether_server_members_is_on_and_how_to_enable_it(env, enabled):
    app, dc = env
    bot = await dc.create_bot("Loja Bot", privileged_intents=["members"] if enabled else ())
    seller = await make_seller(app)
    assert (await seller.post("/bot", {"token": bot.token})).status_code == 302
    status, page = await seller.text("/bot")
    assert status == 200
    if enabled:
        assert "Server Members Intent: ativado" in page and "em segundos" in page
        assert "Privileged Gateway Intents" not in page.split('id="members-intent"')[1][:300]
    else:
        assert "Server Members Intent: desativado" in page
        assert "Bot → Privileged Gateway Intents" in page and "em até uma hora" in page


async def test_bot_page_before_a_token_explains_nothing_about_intents(env):
    app, _ = env
    seller = await make_seller(app)
    status, page = await seller.text("/bot")
    assert status == 200 and 'id="members-intent"' not in page

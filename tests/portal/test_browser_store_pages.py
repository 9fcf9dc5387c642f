"""The issue 16/17/20 settings pages in a real browser (Playwright driving Debian's Chromium,
headless) against a real hypercorn portal, the Discord stand-in and the Mercado Pago stand-in:
the seller reads the ratings per product, picks the tickets' staff role and category from what
the bot sees, makes a variation a shared link with a sales cap, and sees the Mercado Pago
account it connected.

Screenshots go to docs/screenshots/ with VITRINE_UPDATE_SCREENSHOTS=1 (`ratings.png`,
`tickets-settings.png`, `variation-kind.png`, `mercadopago.png`), else to a scratch directory.
"""

from __future__ import annotations

import pytest

from ops.process_tools import free_port
from sandbox.discord.client import DiscordSandbox
from sandbox.mercadopago.oauth_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sandbox.server import run_sandbox
from shop import tickets
from shop.models import ProductKind, Tenant, Variation
from shop.models.mp_accounts import MPConnection
from tests.helpers.portal import portal_settings
from tests.payments.connected_helpers import connect_seller
from tests.portal import test_browser
from tests.portal.test_browser import CHROMIUM, CHROMIUM_ARGS, shot
from tests.portal.test_browser_subscribers import _session_cookie
from tests.portal.test_onboarding_pickers import _store_with_bot
from tests.portal.test_ratings_portal import _rated
from tests.shop.helpers import serve_quart
from web.portal import create_app

playwright_api = test_browser.playwright_api
pytestmark = test_browser.pytestmark  # e2e; skipped without chromium

SELLER_MP_ID = 2_000_555_001


@pytest.fixture
async def world(tmp_path, sqlite_db, redis_url):
    port = free_port()
    async with (
        run_sandbox("127.0.0.1", 0, mp_port=0) as sb,
        DiscordSandbox(sb.discord_base) as dc,
    ):
        settings = portal_settings(
            tmp_path,
            sqlite_db,
            redis_url,
            PORTAL_PORT=str(port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            DISCORD_API_BASE=sb.discord_api_base,
            DISCORD_OAUTH_BASE=sb.oauth_base,
            MERCADOPAGO_API_BASE=sb.mp_api_base,
            MERCADOPAGO_ACCESS_TOKEN="TEST-browser",
            MERCADOPAGO_CLIENT_ID=SANDBOX_CLIENT_ID,
            MERCADOPAGO_CLIENT_SECRET=SANDBOX_CLIENT_SECRET,
            MERCADOPAGO_OAUTH_BASE=sb.mp_api_base,
        )
        app = create_app(settings)
        async with serve_quart(app, port) as base:
            yield app, dc, base


async def test_ratings_tickets_kind_and_mercadopago_pages_in_a_real_browser(world):
    app, dc, base = world
    seller, _user, _bot, guild = await _store_with_bot(app, dc)
    category = (
        await dc.call(
            "POST", f"/_sandbox/guilds/{guild.id}/channels", json={"name": "Tickets", "type": 4}
        )
    )["id"]
    await dc.call("POST", f"/_sandbox/guilds/{guild.id}/roles", json={"name": "Equipe"})
    guild = await dc.guild(guild.id)
    assert (await seller.post("/bot/server", {"guild_id": guild.id})).status_code == 302
    await Tenant.filter(id=seller.tenant.id).update(support_channel_id=guild.channel("suporte"))
    netflix = await _rated(seller.tenant, [5, 5, 4], name="Netflix")
    await _rated(seller.tenant, [4], name="Spotify")
    variation = await Variation.filter(product_id=netflix.id).first()
    assert variation is not None
    await connect_seller(seller, SELLER_MP_ID)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="pt-BR"
            )
            await context.add_cookies(_session_cookie(seller, base))
            page = await context.new_page()
            page.set_default_timeout(15_000)
            # Ratings: the average and count per product.
            await page.goto(f"{base}/ratings")
            row = page.locator(f'tr[data-product="{netflix.id}"]')
            assert "★ 4.7" in (await row.text_content() or "")
            assert await row.locator("td.count").text_content() == "3"
            await shot(page, "ratings")
            # Tickets: staff role and category picked from what the bot sees.
            await page.goto(f"{base}/tickets/settings")
            assert "#suporte" in (await page.text_content("#support-channel") or "")
            await page.select_option("#f-staff_role", guild.role("Equipe"))
            await page.select_option("#f-category", category)
            await page.fill("#f-per_day", "4")
            await page.click("#save-tickets")
            await page.wait_for_url(f"{base}/tickets/settings")
            chosen = await tickets.settings_of(seller.tenant.id)
            assert (chosen.staff_role_id, chosen.category_id, chosen.per_buyer_per_day) == (
                guild.role("Equipe"),
                category,
                4,
            )
            await shot(page, "tickets-settings")
            # Product kind: a shared link, 50 at most.
            await page.goto(f"{base}/variations/{variation.id}/delivery")
            # A user clicks the label (its hint covers the bare radio in Pico's layout).
            await page.click('label:has(input[name="kind"][value="shared"])')
            await page.fill("#f-sales_cap", "50")
            await page.fill("#f-shared_content", "https://drive.example.com/curso-completo")
            await page.click("#kind-save")
            await page.wait_for_selector('input[name="kind"][value="shared"]:checked')
            saved = await Variation.get(id=variation.id)
            assert (saved.kind, saved.sales_cap) == (ProductKind.SHARED, 50)
            await shot(page, "variation-kind")
            # Mercado Pago: the connected account.
            await page.goto(f"{base}/money")
            await page.click("#mp-link")
            await page.wait_for_selector("#mp-disconnect")
            assert str(SELLER_MP_ID) in (await page.text_content("#mp-status") or "")
            assert await MPConnection.filter(tenant_id=seller.tenant.id).count() == 1
            await shot(page, "mercadopago")
        finally:
            await browser.close()

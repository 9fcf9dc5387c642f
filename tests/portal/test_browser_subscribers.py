"""The subscribers page and the role picker in a real browser (Playwright driving Debian's
Chromium, headless) against a real hypercorn portal and the Discord stand-in: the seller sees
MRR and its 12-month chart, switches tabs, extends and revokes an access, and picks roles and a
duration for a variation (a role above the bot refused with the reason).

Screenshots go to docs/screenshots/ with VITRINE_UPDATE_SCREENSHOTS=1 (`subscribers.png`,
`subscribers-phone.png`, `variation-roles.png`), else to a scratch directory.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shop.models import AccessGrant, AccessStatus, Product, Variation
from tests.helpers.portal import served_portal_with_discord
from tests.portal import test_browser
from tests.portal.test_browser import CHROMIUM, CHROMIUM_ARGS, shot
from tests.portal.test_onboarding_pickers import _store_with_bot
from tests.portal.test_subscribers import _access

playwright_api = test_browser.playwright_api
pytestmark = test_browser.pytestmark  # e2e; skipped without chromium


@pytest.fixture
async def world(tmp_path, sqlite_db, redis_url):
    async with served_portal_with_discord(tmp_path, sqlite_db, redis_url) as served:
        yield served


async def _subscribers(tenant, now):
    """A year of a small VIP club: monthly and quarterly members, one ending soon, one ended."""
    product = await Product.create(tenant=tenant, name="Clube VIP")
    monthly = await Variation.create(
        tenant=tenant, product=product, name="Mensal", price_cents=2990, duration_days=30
    )
    quarterly = await Variation.create(
        tenant=tenant, product=product, name="Trimestral", price_cents=7990, duration_days=90
    )
    for i in range(8):
        months = 10 - i
        renewals = [(2990, 30, k > 0, "delivered") for k in range(months)]
        start = now - timedelta(days=30 * months - 3 - 4 * i)  # ends in 3, 7, 11... days
        await _access(
            tenant,
            monthly,
            f"8000000000000000{i:02d}",
            start,
            30 * months,
            orders=renewals,
            name=f"Membro {i + 1}",
        )
    for i in range(3):
        start = now - timedelta(days=20 + 30 * i)
        orders = [(7990, 90, False, "delivered")]
        await _access(
            tenant,
            quarterly,
            f"8100000000000000{i:02d}",
            start,
            90,
            orders=orders,
            name=f"Trimestral {i + 1}",
        )
    await _access(
        tenant,
        monthly,
        "820000000000000001",
        now - timedelta(days=70),
        30,
        orders=[(2990, 30, False, "delivered")],
        status=AccessStatus.ENDED,
        name="Ex-membro",
    )
    return monthly


async def test_subscribers_page_and_role_picker_in_a_real_browser(world):
    app, dc, base = world
    seller, _user, _bot, guild = await _store_with_bot(app, dc)
    await dc.call("POST", f"/_sandbox/guilds/{guild.id}/roles", json={"name": "Topo"})
    await dc.call("POST", f"/_sandbox/guilds/{guild.id}/roles", json={"name": "VIP", "position": 1})
    guild = await dc.guild(guild.id)
    assert (await seller.post("/bot/server", {"guild_id": guild.id})).status_code == 302
    now = datetime.now(UTC)
    monthly = await _subscribers(seller.tenant, now)
    ending = await AccessGrant.get(buyer_discord_id="800000000000000000")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="pt-BR"
            )
            await context.add_cookies(_session_cookie(seller, base))
            page = await context.new_page()
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            page.set_default_timeout(15_000)
            await page.goto(f"{base}/")
            await page.click("#nav-subscribers")
            await page.wait_for_selector("#mrr-chart")
            mrr = await page.text_content("#mrr")
            assert mrr and mrr.startswith("R$ ") and mrr != "R$ 0,00"
            assert await page.locator("#mrr-chart rect.bar").count() == 12
            assert await page.text_content("#active-count") == "11"
            await shot(page, "subscribers")
            # Ending within 7 days: the member whose period ends soonest.
            await page.click("#tab-ending")
            row = page.locator(f"#access-{ending.id}")
            await row.wait_for()
            await row.locator("input.days").fill("30")
            await row.locator(".access-extend button").click()
            await page.wait_for_selector(".flash-success")
            assert "estendido em 30 dias" in (await page.text_content(".flash-success") or "")
            extended = await AccessGrant.get(id=ending.id)
            assert extended.ends_at == ending.ends_at + timedelta(days=30)
            await page.goto(f"{base}/subscribers")
            await page.locator(f"#access-{ending.id} .access-revoke button").click()
            await page.wait_for_selector(".flash-success")
            assert (await AccessGrant.get(id=ending.id)).status == AccessStatus.REVOKED
            await page.click("#tab-ended")
            await page.locator(f"#access-{ending.id}").wait_for()
            # The role picker on the variation's page.
            await page.goto(f"{base}/variations/{monthly.id}/edit")
            await page.select_option("#f-role_ids", [guild.role("VIP"), guild.role("Topo")])
            await page.select_option("#f-duration", "30")
            await page.click("#save-access")
            error = await page.text_content("#e-role_ids")
            assert error and "arraste @Loja Ana para cima de @Topo" in error
            await shot(page, "variation-roles")
            await page.select_option("#f-role_ids", [guild.role("VIP"), guild.role("Comprador")])
            await page.click("#save-access")
            await page.wait_for_selector(".flash-success")
            saved = await Variation.get(id=monthly.id)
            assert sorted(saved.role_ids) == sorted([guild.role("VIP"), guild.role("Comprador")])
            assert saved.duration_days == 30
            # On a phone the chart and the table still fit.
            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, locale="pt-BR", is_mobile=True
            )
            await phone.add_cookies(await context.cookies())
            mobile = await phone.new_page()
            await mobile.goto(f"{base}/subscribers")
            await mobile.wait_for_selector("#mrr-chart")
            width = await mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= 400, width
            await shot(mobile, "subscribers-phone")
        finally:
            await browser.close()


def _session_cookie(seller, base):
    """The seller's portal session cookie (made by `make_seller`), for the browser."""
    values = [c.value for c in seller.client.cookie_jar if c.name == "vitrine_portal"]
    assert values, "no session cookie"
    return [{"name": "vitrine_portal", "value": values[0], "url": base}]

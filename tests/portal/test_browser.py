"""The portal in a real browser (Playwright driving Debian's Chromium, headless) against a
real hypercorn portal, the Discord and Mercado Pago stand-ins and a real orchestrator with its
bot workers: log in, onboard a bot, build the catalog, paste stock, then a buyer pays by PIX in
Discord and the seller's open dashboard shows the money without a reload; finally a withdrawal.

Screenshots of the main pages go to docs/screenshots/ with VITRINE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.i18n import format_brl
from fleet.models import BotInstance
from ops.demo_buyer import buy, order_id_of, post_panel
from ops.fleet_harness import Fleet
from ops.process_tools import free_port
from sandbox.discord.client import Buyer, DiscordSandbox
from sandbox.mercadopago.client import MercadoPagoSandboxClient
from sandbox.server import run_sandbox
from shop import ledger
from shop.models import Payment, StockItem, Variation
from tests.helpers.portal import portal_settings
from tests.portal.test_stock import LINES_20_WITH_2_DUPLICATES
from tests.shop.helpers import serve_quart
from tests.storefront.helpers import wait_status
from web.portal import create_app

WEBHOOK_SECRET = "browser-webhook-secret-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The screenshots in docs/ are refreshed on request (VITRINE_UPDATE_SCREENSHOTS=1 make test);
# otherwise they go to a scratch directory so a test run leaves the work tree clean.
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("VITRINE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "vitrine-screenshots"
)

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
]


@pytest.fixture
async def world(tmp_path, sqlite_db, redis_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        run_sandbox("127.0.0.1", 0, mp_port=0, mp_webhook_secret=WEBHOOK_SECRET) as sb,
        DiscordSandbox(sb.discord_base) as dc,
        MercadoPagoSandboxClient(sb.mp_api_base) as mpc,
    ):
        oauth = await dc.create_oauth_app([f"{base}/auth/callback"])
        # Workers create the PIX (notification_url = this portal); the portal verifies the
        # webhook the MP stand-in sends and books the sale.
        payments = {
            "MERCADOPAGO_API_BASE": sb.mp_api_base,
            "MERCADOPAGO_ACCESS_TOKEN": "TEST-browser",
            "MERCADOPAGO_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PUBLIC_BASE_URL": base,
            "WITHDRAWAL_HOLD_DAYS": "0",
        }
        fleet = Fleet(tmp_path, sqlite_db, redis_url, sb.discord_api_base, extra_env=payments)
        settings = portal_settings(
            tmp_path,
            sqlite_db,
            redis_url,
            PORTAL_PORT=str(port),
            DISCORD_API_BASE=sb.discord_api_base,
            DISCORD_OAUTH_BASE=sb.oauth_base,
            DISCORD_CLIENT_ID=oauth["client_id"],
            DISCORD_CLIENT_SECRET=oauth["client_secret"],
            TOKEN_ENCRYPTION_KEYS=fleet.key,
            **payments,
        )
        try:
            async with serve_quart(create_app(settings), port):
                fleet.start()
                yield base, dc, fleet, mpc
        finally:
            await fleet.cleanup()


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_seller_journey_in_a_real_browser(world):
    base, dc, fleet, mpc = world
    seller = await dc.create_user("vendedora")
    bot = await dc.create_bot("Loja da Ana")
    guild = await dc.create_guild(
        "Servidor da Ana",
        owner_id=seller["id"],
        channels=["loja", "vendas", "suporte"],
        roles=["Comprador"],
        bots=[bot],
    )
    discord = SimpleNamespace(
        dc=dc,
        mpc=mpc,
        bot=bot,
        guild=guild,
        staff=Buyer(dc, seller, "pt-BR"),  # the owner may post panels
        buyer=await dc.buyer("bruno", guilds=[guild]),
    )
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="pt-BR")
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            page.set_default_timeout(15_000)
            await _login_and_onboard(page, base, seller, bot)
            await _pick_server_channels_and_check(page, base, dc, guild)
            await _dashboard_goes_live(page, base, fleet)
            await _catalog_and_stock(page, base)
            await _buy_in_discord_and_watch_it_live(page, base, discord)
            await _phone_and_english(browser, page, base)
        finally:
            await browser.close()


async def _login_and_onboard(page, base, seller, bot):
    await page.goto(f"{base}/login")
    await shot(page, "login")
    await page.click("#login-discord")
    await page.click(f'a.user[data-user-id="{seller["id"]}"]')  # the sandbox consent page
    await page.wait_for_url(f"{base}/stores/new")
    await page.fill("#store-name", "Loja da Ana")
    await page.click("#create-store")
    await page.wait_for_url(f"{base}/bot")
    await page.fill("#bot-token", "not-a-valid-token")
    await page.click("#save-token")
    assert "Token inválido" in await page.inner_text("#token-error")
    await page.fill("#bot-token", bot.token)
    await page.click("#save-token")
    await page.wait_for_selector("#bot-name")
    assert await page.inner_text("#bot-name") == "Loja da Ana"
    assert bot.application_id in await page.get_attribute("#invite-link", "href")
    assert bot.token not in await page.content()
    await shot(page, "onboarding-bot")


async def _pick_server_channels_and_check(page, base, dc, guild):
    """Issue 18: the server, channels and buyer role are picked from what the bot sees (no
    ids typed); the permission check finds a Send Messages overwrite and clears once fixed."""
    await page.click("#pick-server")
    await page.wait_for_url(f"{base}/bot/server")
    await page.check(f'input[name="guild_id"][value="{guild.id}"]')
    await shot(page, "onboarding-server")
    await page.click("#choose-server")
    await page.wait_for_url(f"{base}/bot/channels")
    await page.select_option("#f-sales_log", guild.channel("vendas"))
    await page.select_option("#f-support", guild.channel("suporte"))
    await page.select_option("#f-buyer_role", guild.role("Comprador"))
    await page.click("#save-channels")
    await page.wait_for_selector("#check-ok")
    # A server admin denies Send Messages to @everyone in #vendas.
    await dc.set_overwrite(guild.channel("vendas"), guild.id, deny=1 << 11)
    await page.click("#recheck")
    await page.wait_for_selector('#problems li[data-code="channel_missing"]')
    assert "Enviar mensagens" in await page.inner_text("#problems")
    await shot(page, "onboarding-permissions")
    await dc.delete_overwrite(guild.channel("vendas"), guild.id)
    await page.click("#recheck")
    await page.wait_for_selector("#check-ok")


async def _dashboard_goes_live(page, base, fleet):
    await page.goto(f"{base}/")
    await page.evaluate("window.__sameDocument = true")
    await page.wait_for_selector('.instance[data-state="online"]', timeout=30_000)
    assert await page.evaluate("window.__sameDocument") is True  # updated without a reload
    assert await page.inner_text("#instance-state") == "online"
    instance = await BotInstance.get(bot_username="Loja da Ana")
    rec = await fleet.wait_for("guild count", lambda: _with_guilds(fleet, instance.id))
    assert rec.guilds == 1


async def _with_guilds(fleet, iid):
    rec = await fleet.record(iid)
    return rec if rec and rec.guilds else None


async def _catalog_and_stock(page, base):
    await page.goto(f"{base}/products/new")
    await page.fill("#f-name", "Netflix Premium")
    await page.fill("#f-description", "Tela 4K, entrega na hora")
    await page.click("#save-product")
    await page.wait_for_selector("#variation-form")
    for name, price in (("1 mês", "19,90"), ("3 meses", "49,90")):
        await page.fill("#variation-form #f-name", name)
        await page.fill("#variation-form #f-price", price)
        await page.click("#add-variation")
        await page.wait_for_selector(f"#variations td:has-text('{name}')")
    assert "R$ 49,90" in await page.inner_text("#variations")
    await shot(page, "product")
    await page.click("#variations .stock-link >> nth=0")
    await page.fill("#stock-items", LINES_20_WITH_2_DUPLICATES)
    await page.click("#stock-submit")
    await page.wait_for_selector("#stock-summary")
    assert await page.inner_text("#summary-added") == "18"
    assert await page.inner_text("#summary-duplicates") == "2"
    assert await page.inner_text("#count-available") == "18"  # updated in place (htmx)
    await shot(page, "stock")
    await page.goto(f"{base}/products")
    await shot(page, "products")


async def _buy_in_discord_and_watch_it_live(page, base, discord):
    """A buyer pays in Discord; the seller's open dashboard shows the money by itself."""
    await page.goto(f"{base}/")
    await page.evaluate("window.__sameDocument = true")
    before = await page.inner_text("#balance-available")
    variation = await Variation.get(name="1 mês")
    store = SimpleNamespace(
        staff=discord.staff,
        bot=discord.bot,
        guild=discord.guild,
        shop_channel=discord.guild.channel("loja"),
    )
    panel = await post_panel(store, "Netflix Premium")
    pix = await buy(discord.buyer, panel, variation.id)
    order_id = order_id_of(pix)
    payment = await Payment.get(order_id=order_id)
    await discord.mpc.approve(int(payment.provider_payment_id))  # → signed webhook → portal
    dm = await discord.buyer.wait_dm(lambda m: bool(m.embeds or m.attachments), timeout=30)
    # The DM reaches Discord just before the worker records it delivered.
    order = await wait_status(order_id, "delivered")
    assert order.delivery_path == "dm"
    item = await StockItem.get(order_id=order_id)
    assert item.status == "sold"
    expected = format_brl((await ledger.balance(order.tenant_id)).available_cents)
    await _text_becomes(page, "#balance-available", expected, before)
    assert expected != before and dm is not None
    assert await page.inner_text("#today-sales") == "R$ 19,90"
    assert await page.evaluate("window.__sameDocument") is True
    await shot(page, "dashboard")
    await page.goto(f"{base}/orders")
    await shot(page, "orders")
    await page.click(f"#order-{order.id} a")
    await page.wait_for_selector("#timeline")
    assert "Entregue" in await page.inner_text("#timeline")
    await shot(page, "order-detail")
    available = (await ledger.balance(order.tenant_id)).available_cents
    await page.goto(f"{base}/money")
    await page.fill("#withdraw-form input[name=amount]", "10,00")
    await page.fill("#withdraw-form input[name=pix_key]", "ana@example.com")
    await page.click("#withdraw-submit")
    await page.wait_for_selector("#withdrawals .status-requested")
    assert await page.inner_text("#money-available") == format_brl(available - 1000)
    await shot(page, "money")
    await page.goto(f"{base}/settings")
    await shot(page, "settings")


async def _text_becomes(
    page, selector: str, wanted: str, before: str, within: float = 15.0
) -> None:
    """Poll from Python: the page's CSP (rightly) forbids Playwright's eval-based waits."""
    deadline = asyncio.get_running_loop().time() + within
    text = before
    while asyncio.get_running_loop().time() < deadline:
        text = await page.inner_text(selector)
        if text == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{selector} stayed {text!r}, expected {wanted!r} (was {before!r})")


async def _phone_and_english(browser, page, base):
    cookies = await page.context.cookies()
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="pt-BR"
    )
    await phone.add_cookies(cookies)
    mobile = await phone.new_page()
    await mobile.goto(f"{base}/")
    await mobile.wait_for_selector('.instance[data-state="online"]')
    width = await mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the dashboard scrolls sideways on a phone ({width}px)"
    await shot(mobile, "dashboard-phone")
    await phone.close()
    await page.click("#lang-switch")
    await page.wait_for_selector("#lang-switch:has-text('Português')")
    assert "Balance & payouts" in await page.inner_text("nav.sections")

"""Issue 13 item 8: same-site redirects only, CSRF token rotated at login, CSV cells that a
spreadsheet would run (leading = + - @ tab CR) are neutralised."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlsplit

from shop import ledger
from tests.admin.conftest import app as admin_app  # noqa: F401
from tests.helpers.admin import AUTH, make_tenant
from tests.helpers.portal import CSRF_RE, make_seller
from tests.portal.conftest import portal  # noqa: F401
from tests.portal.test_auth_onboarding import _login
from tests.portal.test_auth_onboarding import env as login_env  # noqa: F401

# What browsers turn into another site, or what is not a path at all.
OFF_SITE = [
    "/\\evil.com",
    "\\/evil.com",
    "\\\\evil.com",
    "//evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "http://evil.com/",
    "https:evil.com",
    "javascript:alert(1)",
    " //evil.com",
    "evil.com",
    "/" + "a" * 3000,
]


def _lands_on_this_site(location: str) -> bool:
    """Where a browser would go: it reads `\\` as `/` and drops tabs and newlines."""
    browser = location.replace("\\", "/").replace("\t", "").replace("\n", "").replace("\r", "")
    parts = urlsplit(browser)
    return (
        browser.startswith("/")
        and not browser.startswith("//")
        and not parts.netloc
        and not parts.scheme
    )


def test_safe_next_path_keeps_own_paths_and_refuses_everything_else():
    from web.common import safe_next_path

    assert safe_next_path("/products?page=2", "/") == "/products?page=2"
    for raw in [*OFF_SITE, "", None]:
        assert safe_next_path(raw, "/home") == "/home", raw


async def test_lang_next_cannot_send_the_browser_to_another_site(portal):  # noqa: F811
    seller = await make_seller(portal)
    for target in OFF_SITE:
        resp = await seller.post("/lang", {"locale": "en", "next": target})
        assert resp.status_code == 302
        assert _lands_on_this_site(resp.headers["Location"]), (target, resp.headers["Location"])
    ok = await seller.post("/lang", {"locale": "pt-BR", "next": "/products?page=2"})
    assert ok.headers["Location"] == "/products?page=2"


async def test_admin_console_does_not_redirect_to_a_foreign_referer(admin_app):  # noqa: F811
    client = admin_app.test_client()
    login = await client.post("/console/login", form={"token": AUTH["Authorization"][7:]})
    assert login.status_code == 302
    for referer in ("https://evil.example/phish", "//evil.example/x", "/\\evil.example"):
        resp = await client.get("/console/lang/en", headers={"Referer": referer})
        assert resp.status_code == 302
        assert _lands_on_this_site(resp.headers["Location"]), (referer, resp.headers["Location"])
    # A page of the console itself is still where the operator goes back to.
    own = await client.get(
        "/console/lang/pt-BR", headers={"Referer": "http://localhost/console/instances?state=error"}
    )
    assert own.headers["Location"] == "/console/instances?state=error"


async def test_pre_login_csrf_token_is_useless_after_login(login_env):  # noqa: F811
    """Login CSRF / fixation: a token seen (or planted) before login must not validate after."""
    app, dc, _ = login_env
    client = app.test_client()
    before = CSRF_RE.search(await (await client.get("/login")).get_data(as_text=True))
    assert before, "the login page carries a CSRF token"
    stolen = before.group(1)
    user = await dc.create_user("vitima")
    client, resp = await _login(app, dc, user["id"], client=client)
    assert resp.status_code == 302
    forged = await client.post("/stores/new", form={"csrf_token": stolen, "name": "Loja do ataque"})
    assert forged.status_code == 403
    from shop.models import Tenant

    assert not await Tenant.filter(name="Loja do ataque").exists()
    page = await (await client.get("/stores/new")).get_data(as_text=True)
    fresh = CSRF_RE.search(page).group(1)
    assert fresh != stolen
    assert (
        await client.post("/stores/new", form={"csrf_token": fresh, "name": "Minha loja"})
    ).status_code == 302


DANGEROUS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]


async def test_portal_ledger_csv_neutralises_formula_cells(portal):  # noqa: F811
    seller = await make_seller(portal)
    for n, memo in enumerate(DANGEROUS):
        await ledger.post(
            f"csv:{n}",
            "adjustment",
            [
                ledger.Leg("platform:clearing", -100),
                ledger.Leg(ledger.seller_account(seller.tenant.id), 100, seller.tenant.id),
            ],
            memo=memo,
        )
    resp = await seller.client.get("/money/ledger.csv")
    assert resp.status_code == 200
    text = (await resp.get_data(as_text=True)).lstrip("\ufeff")
    rows = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
    memos = [row["descricao"] for row in rows]
    assert sorted(memos) == sorted("'" + m for m in DANGEROUS)


async def test_admin_ledger_csv_neutralises_formula_cells(admin_app):  # noqa: F811
    shop = await make_tenant()
    for n, memo in enumerate(DANGEROUS):
        await ledger.post(
            f"csv:{n}",
            "adjustment",
            [
                ledger.Leg("platform:clearing", -100),
                ledger.Leg(ledger.seller_account(shop.id), 100, shop.id),
            ],
            memo=memo,
        )
    resp = await admin_app.test_client().get(
        f"/api/transactions/ledger.csv?tenant_id={shop.id}", headers=AUTH
    )
    assert resp.status_code == 200
    rows = csv.DictReader(io.StringIO(await resp.get_data(as_text=True), newline=""))
    memos = [row["memo"] for row in rows]
    assert sorted(memos) == sorted("'" + m for m in DANGEROUS)

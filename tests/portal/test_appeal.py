"""The unblock appeal round trip: a blocked seller logs in with Discord (sandbox), sees why,
appeals; the operator finds it in `/api/monitor/requests` as `unblock_appeal`, answers; the
seller sees the answer, and once unblocked logs in and uses the portal again."""

from __future__ import annotations

import re

from core.models import AuditLog
from shop.models import Account, AdminRequest, Tenant, WebSession
from tests.helpers.admin import AUTH, admin_settings
from tests.portal.test_auth_onboarding import _login, env  # noqa: F401 - a fixture
from web.admin import create_app as create_admin_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEXT = "Os chargebacks foram de um único comprador; já devolvi o dinheiro a ele."


async def _blocked_seller(app, dc, name: str = "vendedora"):
    """A seller with a store whose account an operator blocked; logs in with Discord."""
    user = await dc.create_user(name)
    account = await Account.create(
        discord_id=user["id"], username=name, blocked=True, blocked_reason="chargebacks demais"
    )
    await Tenant.create(owner=account, name="Loja da " + name)
    client, page = await _login(app, dc, user["id"])
    return user, account, client, page


def _admin(portal, tmp_path, db):
    """The admin API on the same database and Redis as the portal under test."""
    admin = create_admin_app(admin_settings(tmp_path, db, "redis://unused:1/0"))
    admin.config["REDIS"] = portal.config["REDIS"]
    return admin.test_client()


async def test_appeal_round_trip_keep_blocked_then_unblock(env, db, tmp_path):
    app, dc, _ = env
    user, account, seller, page = await _blocked_seller(app, dc)
    html = await page.get_data(as_text=True)
    assert page.status_code == 403 and "chargebacks demais" in html and 'name="text"' in html
    assert await WebSession.filter(account_id=account.id).count() == 0  # still no session
    token = CSRF.search(html).group(1)

    short = await seller.post("/blocked/appeal", form={"csrf_token": token, "text": "oi"})
    assert short.status_code == 400 and "pelo menos 10" in await short.get_data(as_text=True)
    no_csrf = await seller.post("/blocked/appeal", form={"text": TEXT})
    assert no_csrf.status_code == 403
    sent = await seller.post("/blocked/appeal", form={"csrf_token": token, "text": TEXT})
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/blocked")
    html = await (await seller.get("/blocked")).get_data(as_text=True)
    assert "aguardando a equipe" in html and TEXT in html and 'name="text"' not in html
    again = await seller.post("/blocked/appeal", form={"csrf_token": token, "text": TEXT + "!"})
    assert again.status_code == 400 and "já tem um pedido" in await again.get_data(as_text=True)
    assert await AdminRequest.filter(account_id=account.id).count() == 1

    admin = _admin(app, tmp_path, db)
    queue = await (await admin.get("/api/monitor/requests", headers=AUTH)).get_json()
    (item,) = [i for i in queue["items"] if i["detail"].get("kind") == "unblock_appeal"]
    assert item["summary"].startswith("unblock_appeal:") and TEXT in item["detail"]["body"]
    (answer_link,) = [link for link in item["links"] if link["rel"] == "answer"]
    kept = await admin.post(
        answer_link["href"],
        headers=AUTH,
        json={"decision": "keep_blocked", "message": "Precisamos do comprovante do estorno."},
    )
    assert kept.status_code == 200 and (await kept.get_json())["account_blocked"] is True

    html = await (await seller.get("/blocked")).get_data(as_text=True)
    assert "A equipe manteve o bloqueio" in html and "comprovante do estorno" in html
    assert 'name="text"' in html  # may appeal again now
    token = CSRF.search(html).group(1)
    sent = await seller.post(
        "/blocked/appeal", form={"csrf_token": token, "text": TEXT + " Anexo."}
    )
    assert sent.status_code == 302
    second = await AdminRequest.filter(account_id=account.id, status="open").get()
    done = await admin.post(
        f"/api/requests/{second.id}/answer",
        headers=AUTH,
        json={"decision": "unblock", "message": "Comprovante recebido, conta liberada."},
    )
    body = await done.get_json()
    assert done.status_code == 200 and body["account_blocked"] is False
    assert body["decision"] == "unblock" and body["status"] == "resolved"

    html = await (await seller.get("/blocked")).get_data(as_text=True)
    assert "Conta desbloqueada" in html and "Comprovante recebido, conta liberada." in html
    client, back = await _login(app, dc, user["id"], client=seller)
    assert back.status_code == 302 and back.headers["Location"] == "/"
    home = await client.get("/")
    assert home.status_code == 200
    assert "Comprovante recebido, conta liberada." in await home.get_data(as_text=True)
    assert (await client.get("/products")).status_code == 200  # acts in the portal again
    actions = [
        e.action
        for e in await AuditLog.filter(
            action__in=["appeal.opened", "appeal.answered", "account.unblocked"]
        ).order_by("id")
    ]
    assert actions == [
        "appeal.opened",
        "appeal.answered",
        "appeal.opened",
        "appeal.answered",
        "account.unblocked",
    ]


async def test_appeals_are_rate_limited_and_need_a_proven_blocked_account(env):
    app, dc, _ = env
    _user, _account, seller, page = await _blocked_seller(app, dc, "insistente")
    token = CSRF.search(await page.get_data(as_text=True)).group(1)
    statuses = [
        (
            await seller.post("/blocked/appeal", form={"csrf_token": token, "text": "curto"})
        ).status_code
        for _ in range(11)
    ]
    assert statuses == [400] * 10 + [429]
    huge = await seller.post("/blocked/appeal", form={"csrf_token": token, "text": "x" * 50_000})
    assert huge.status_code == 429  # still limited; nothing stored either way
    assert await AdminRequest.all().count() == 0
    stranger = app.test_client()  # never logged in: nobody to appeal for
    assert (await stranger.get("/blocked")).status_code == 302
    html = await (await stranger.get("/login")).get_data(as_text=True)
    token = CSRF.search(html).group(1) if CSRF.search(html) else ""
    refused = await stranger.post("/blocked/appeal", form={"csrf_token": token, "text": TEXT})
    assert refused.status_code in (302, 403) and await AdminRequest.all().count() == 0

"""OAuth2 authorization-code flow against the sandbox, driven with httpx like the portal would."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

REDIRECT = "http://127.0.0.1:5000/auth/callback"


@pytest.fixture
async def oauth(sandbox, dc):
    app = await dc.create_oauth_app([REDIRECT])
    owner = await dc.create_user("seller", email="seller@example.com")
    buyer = await dc.create_user("buyer")
    guild = await dc.create_guild("Loja do Seller", owner_id=owner["id"])
    await dc.add_member(guild, buyer["id"])
    async with httpx.AsyncClient(base_url=sandbox.oauth_base) as http:
        yield {"app": app, "owner": owner, "buyer": buyer, "guild": guild, "http": http}


def _query(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def _authorize(http: httpx.AsyncClient, client_id: str, **extra: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "scope": "identify guilds email",
        "state": "xyz",
        "redirect_uri": REDIRECT,
        **extra,
    }
    return await http.get("/oauth2/authorize", params=params)


async def _exchange(http, app, code, **kw) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    return await http.post(
        "/api/v10/oauth2/token", data=form, auth=(app["client_id"], app["client_secret"]), **kw
    )


async def test_code_flow_then_user_and_guilds(oauth):
    http, app, owner = oauth["http"], oauth["app"], oauth["owner"]
    page = await _authorize(http, app["client_id"])
    assert page.status_code == 200 and "seller" in page.text and 'id="deny"' in page.text

    params = _query(await _authorize(http, app["client_id"], sandbox_user=owner["id"]))
    assert params["state"] == "xyz"
    token = await _exchange(http, app, params["code"])
    assert token.status_code == 200
    assert token.headers["content-type"] == "application/json"
    body = token.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "identify guilds email"

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    me = (await http.get("/api/v10/users/@me", headers=bearer)).json()
    assert (me["id"], me["username"], me["email"]) == (owner["id"], "seller", "seller@example.com")
    guilds = (await http.get("/api/v10/users/@me/guilds", headers=bearer)).json()
    assert [(g["id"], g["owner"]) for g in guilds] == [(oauth["guild"].id, True)]
    assert isinstance(guilds[0]["permissions"], str) and int(guilds[0]["permissions"]) & 0x8

    reused = await _exchange(http, app, params["code"])
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": 'Invalid "code" in request.',
    }

    refreshed = await http.post(
        "/api/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert refreshed.status_code == 200
    assert (await http.get("/api/v10/users/@me", headers=bearer)).status_code == 401
    new_bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await http.get("/api/v10/users/@me", headers=new_bearer)).status_code == 200

    revoked = await http.post(
        "/api/oauth2/token/revoke",
        data={"token": refreshed.json()["access_token"]},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert revoked.status_code == 200
    gone = await http.get("/api/v10/users/@me", headers=new_bearer)
    assert (gone.status_code, gone.json()) == (401, {"message": "401: Unauthorized", "code": 0})


async def test_member_guild_permissions_are_not_admin(oauth):
    http, app = oauth["http"], oauth["app"]
    params = _query(await _authorize(http, app["client_id"], sandbox_user=oauth["buyer"]["id"]))
    access = (await _exchange(http, app, params["code"])).json()["access_token"]
    guilds = (
        await http.get("/api/v10/users/@me/guilds", headers={"Authorization": f"Bearer {access}"})
    ).json()
    assert guilds[0]["owner"] is False
    assert int(guilds[0]["permissions"]) & (0x8 | 0x20) == 0


async def test_json_body_is_rejected(oauth):
    http, app = oauth["http"], oauth["app"]
    params = _query(await _authorize(http, app["client_id"], sandbox_user=oauth["owner"]["id"]))
    resp = await http.post(
        "/api/v10/oauth2/token",
        json={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert resp.status_code == 400
    assert "error" in resp.json()
    # The code was not consumed by the rejected request.
    assert (await _exchange(http, app, params["code"])).status_code == 200


async def test_wrong_secret_and_wrong_redirect(oauth):
    http, app = oauth["http"], oauth["app"]
    params = _query(await _authorize(http, app["client_id"], sandbox_user=oauth["owner"]["id"]))
    bad_client = await http.post(
        "/api/v10/oauth2/token",
        data={"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT},
        auth=(app["client_id"], "wrong"),
    )
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    bad_redirect = await http.post(
        "/api/v10/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": "http://evil.example/cb",
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert bad_redirect.json()["error"] == "invalid_grant"
    unregistered = await http.get(
        "/oauth2/authorize",
        params={"client_id": app["client_id"], "redirect_uri": "http://evil.example/cb"},
    )
    assert unregistered.status_code == 400


async def test_deny_redirects_with_access_denied(oauth):
    http, app = oauth["http"], oauth["app"]
    page = await _authorize(http, app["client_id"])
    deny_href = page.text.split('id="deny" href="')[1].split('"')[0].replace("&amp;", "&")
    params = _query(await http.get(deny_href))
    assert params["error"] == "access_denied"
    assert params["state"] == "xyz"
    assert params["error_description"]
    assert "code" not in params

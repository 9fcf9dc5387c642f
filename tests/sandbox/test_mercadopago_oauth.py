"""The Mercado Pago stand-in's OAuth: codes work once and expire, PKCE and the redirect are
checked, refused grants answer like Mercado Pago, revoked tokens stop working, and the
marketplace fee is bounded by the amount."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.mercadopago.oauth_state import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sandbox.mercadopago.testing import mp_harness, pix_body
from shop.payments.mp_oauth import new_pkce

REDIRECT = "https://loja.example.com.br/money/mercadopago/callback"


@pytest.fixture
async def mp():
    async with mp_harness() as harness:
        yield harness


async def _code(mp, user_id: int = 2_000_111_001, challenge: str | None = None) -> str:
    form = {
        "client_id": SANDBOX_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "state": "abc",
        "decision": "allow",
        "user_id": str(user_id),
    }
    if challenge:
        form.update(code_challenge=challenge, code_challenge_method="S256")
    answer = await mp.api.post("/authorization", data=form)
    assert answer.status_code == 302
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back["state"] == ["abc"]
    return back["code"][0]


def _exchange(code: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        **extra,
    }


async def test_a_code_works_once(mp):
    code = await _code(mp)
    first = await mp.api.post("/oauth/token", json=_exchange(code))
    assert first.status_code == 200
    body = first.json()
    assert body["user_id"] == 2_000_111_001 and body["expires_in"] == 15_552_000
    assert body["access_token"].startswith("APP_USR-") and body["refresh_token"]
    again = await mp.api.post("/oauth/token", json=_exchange(code))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_expired_code_wrong_redirect_bad_verifier_and_bad_client_are_refused(mp):
    code = await _code(mp)
    await mp.control.advance_clock(11 * 60)  # codes live 10 minutes
    late = await mp.api.post("/oauth/token", json=_exchange(code))
    assert late.json()["error"] == "invalid_grant"

    code = await _code(mp)
    other = await mp.api.post("/oauth/token", json=_exchange(code, redirect_uri=REDIRECT + "x"))
    assert other.json()["error"] == "invalid_grant"

    verifier, challenge = new_pkce()
    code = await _code(mp, challenge=challenge)
    wrong = await mp.api.post("/oauth/token", json=_exchange(code, code_verifier="nope" * 12))
    assert wrong.json()["error"] == "invalid_grant"
    code = await _code(mp, challenge=challenge)
    right = await mp.api.post("/oauth/token", json=_exchange(code, code_verifier=verifier))
    assert right.status_code == 200

    code = await _code(mp)
    bad = await mp.api.post("/oauth/token", json=_exchange(code, client_secret="x"))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    in_query = await mp.api.post(f"/oauth/token?code={code}", json=_exchange(code))
    assert in_query.json()["error"] == "invalid_request"


async def test_denied_consent_and_revoked_tokens(mp):
    answer = await mp.api.post(
        "/authorization",
        data={
            "client_id": SANDBOX_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "state": "abc",
            "decision": "deny",
        },
    )
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == ["access_denied"]

    tokens = (await mp.api.post("/oauth/token", json=_exchange(await _code(mp)))).json()
    seller = {"Authorization": f"Bearer {tokens['access_token']}"}
    body = pix_body(application_fee=1.0)
    created = await mp.api.post(
        "/v1/payments", json=body, headers={**seller, "X-Idempotency-Key": "k1"}
    )
    assert created.status_code == 201 and created.json()["collector_id"] == 2_000_111_001
    too_much = pix_body(application_fee=99.0)
    refused = await mp.api.post(
        "/v1/payments", json=too_much, headers={**seller, "X-Idempotency-Key": "k2"}
    )
    assert refused.status_code == 400

    await mp.api.post("/_sandbox/mp/oauth/revoke", json={"user_id": 2_000_111_001})
    gone = await mp.api.get(f"/v1/payments/{created.json()['id']}", headers=seller)
    assert gone.status_code == 401

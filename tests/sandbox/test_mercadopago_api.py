"""Payments API of the Mercado Pago stand-in, over real sockets with httpx."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest

from sandbox.mercadopago import MercadoPagoConfig
from sandbox.mercadopago.brcode import parse_brcode
from sandbox.mercadopago.testing import expiry_in, mp_harness, pix_body

FAST = MercadoPagoConfig(webhook_retry_delays=(0.05, 0.05))
ERROR_KEYS = {"message", "error", "status", "cause"}


@pytest.fixture
async def mp():
    async with mp_harness(FAST) as harness:
        yield harness


def assert_mp_error(resp: httpx.Response, status: int, code: int | str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == ERROR_KEYS and body["status"] == status
    if code is not None:
        assert body["cause"][0]["code"] == code
        assert set(body["cause"][0]) == {"code", "description", "data"}
    return body


async def test_create_pix_payment_has_mp_fields_and_valid_brcode(mp):
    resp = await mp.create(transaction_amount=123.45, metadata={"tenantId": "t1"})
    assert resp.status_code == 201
    assert resp.headers["content-type"].startswith("application/json")
    p = resp.json()
    assert isinstance(p["id"], int) and p["id"] > 0
    assert (p["status"], p["status_detail"]) == ("pending", "pending_waiting_transfer")
    assert (p["payment_method_id"], p["payment_type_id"], p["currency_id"]) == (
        "pix",
        "bank_transfer",
        "BRL",
    )
    assert p["transaction_amount"] == 123.45 and p["transaction_amount_refunded"] == 0
    assert p["date_approved"] is None and p["live_mode"] is False
    assert p["date_created"] and p["date_last_updated"] and p["date_of_expiration"]
    assert p["external_reference"] == "order-1" and p["description"] == "Sandbox order"
    assert p["metadata"] == {"tenant_id": "t1"}  # MP snake_cases metadata keys
    assert p["payer"]["email"] == "buyer@example.com"
    assert p["notification_url"] == mp.notification_url
    assert p["transaction_details"]["total_paid_amount"] == 123.45
    assert p["transaction_details"]["net_received_amount"] == 0
    poi = p["point_of_interaction"]
    assert poi["type"] == "PIX"
    data = poi["transaction_data"]
    fields = parse_brcode(data["qr_code"])  # raises if CRC/TLV invalid
    assert fields["54"] == "123.45"
    assert fields["62"]["05"] == f"mpqrinter{p['id']}"
    assert fields["26"]["00"] == "br.gov.bcb.pix"
    assert base64.b64decode(data["qr_code_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    ticket = await mp.api.get(data["ticket_url"])
    assert ticket.status_code == 200 and data["qr_code"] in ticket.text


async def test_ticket_page_pay_button_approves(mp):
    p = (await mp.create()).json()
    ticket_url = p["point_of_interaction"]["transaction_data"]["ticket_url"]
    page = await mp.api.get(ticket_url)
    assert "Pay (sandbox)" in page.text
    pay = await mp.api.post(f"/_sandbox/mp/payments/{p['id']}/approve?redirect=ticket")
    assert pay.status_code == 303
    assert pay.headers["location"] == f"/_sandbox/mp/payments/{p['id']}/ticket"
    assert (await mp.control.payment(p["id"]))["status"] == "approved"


async def test_idempotency_key_same_body_returns_same_payment(mp):
    first = await mp.create(key="order-42")
    again = await mp.create(key="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert len(mp.state.payments) == 1
    assert mp.app["mp_state"] is mp.state  # plain-string alias of MP_STATE
    other = await mp.create(key="order-43")
    assert other.json()["id"] > first.json()["id"]
    conflict = await mp.create(key="order-42", transaction_amount=99.99)
    assert_mp_error(conflict, 409)
    assert len(mp.state.payments) == 2
    counts = await mp.control.requests()
    assert counts["POST /v1/payments"] == 4


async def test_client_timeout_then_retry_with_same_key_charges_once(mp):
    await mp.control.set_faults(slow_ms=400)
    body = pix_body(mp.notification_url)
    with pytest.raises(httpx.ReadTimeout):
        await mp.api.post(
            "/v1/payments", json=body, headers={"X-Idempotency-Key": "k"}, timeout=0.1
        )
    await mp.control.set_faults(slow_ms=0)
    retry = await mp.api.post("/v1/payments", json=body, headers={"X-Idempotency-Key": "k"})
    assert retry.status_code == 201
    assert [p["id"] for p in await mp.control.payments()] == [retry.json()["id"]]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"payer": {"first_name": "no email"}}, 4050),
        ({"payer": {"email": "not-an-email"}}, 4050),
        ({"transaction_amount": 0}, 4037),
        ({"transaction_amount": -5}, 4037),
        ({"transaction_amount": 10.123}, 4037),
        ({"transaction_amount": "10.00"}, 4037),
        ({"transaction_amount": None}, 4037),
        ({"date_of_expiration": "2030-01-01 10:00:00"}, 23),
        ({"date_of_expiration": "2030-01-01T10:00:00-03:00"}, 23),
        ({"date_of_expiration": expiry_in(timedelta(minutes=10))}, 4027),
        ({"date_of_expiration": expiry_in(timedelta(days=31))}, 4027),
        ({"notification_url": "ftp://example.com/wh"}, 4020),
        ({"notification_url": "not a url"}, 4020),
        ({"external_reference": "x" * 257}, 4002),
        ({"payment_method_id": "bolbradesco"}, 4033),
        ({"transaction_ammount": 10}, 8),
    ],
)
async def test_validation_errors_use_mp_shape(mp, overrides, code):
    resp = await mp.create(**overrides)
    assert_mp_error(resp, 400, code)
    assert mp.state.payments == {}


async def test_auth_and_idempotency_header_are_required(mp):
    body = pix_body()
    no_auth = await mp.api.post(
        "/v1/payments", json=body, headers={"Authorization": "", "X-Idempotency-Key": "a"}
    )
    assert_mp_error(no_auth, 401)
    basic = await mp.api.post(
        "/v1/payments", json=body, headers={"Authorization": "Basic abc", "X-Idempotency-Key": "a"}
    )
    assert_mp_error(basic, 401)
    no_key = await mp.api.post("/v1/payments", json=body)
    assert_mp_error(no_key, 400, 4292)
    assert mp.state.payments == {}


async def test_only_configured_tokens_are_accepted():
    config = MercadoPagoConfig(access_tokens={"APP_USR-1-2-3-555"})
    async with mp_harness(config, token="APP_USR-other") as mp:
        assert_mp_error(await mp.create(), 401)
        good = await mp.api.post(
            "/v1/payments",
            json=pix_body(),
            headers={"Authorization": "Bearer APP_USR-1-2-3-555", "X-Idempotency-Key": "z"},
        )
        assert good.status_code == 201 and good.json()["collector_id"] == 555


async def test_get_payment_and_not_found_shape(mp):
    created = (await mp.create()).json()
    got = await mp.api.get(f"/v1/payments/{created['id']}")
    assert got.status_code == 200 and got.json()["id"] == created["id"]
    missing = assert_mp_error(await mp.api.get("/v1/payments/1"), 404, 2000)
    assert missing["message"] == "Payment not found" and missing["error"] == "not_found"
    # A different seller (OAuth user id in the token) cannot see it.
    other = await mp.api.get(
        f"/v1/payments/{created['id']}", headers={"Authorization": "Bearer APP_USR-9-9-9-777"}
    )
    assert_mp_error(other, 404, 2000)


async def test_search_by_external_reference_with_paging(mp):
    ids = []
    for n, ref in enumerate(["A", "B", "A", "A"]):
        ids.append((await mp.create(key=f"k{n}", external_reference=ref)).json()["id"])
    resp = await mp.api.get(
        "/v1/payments/search",
        params={
            "external_reference": "A",
            "sort": "date_created",
            "criteria": "desc",
            "limit": 2,
            "offset": 0,
        },
    )
    assert resp.status_code == 200
    page = resp.json()
    assert page["paging"] == {"total": 3, "limit": 2, "offset": 0}
    assert [p["id"] for p in page["results"]] == [ids[3], ids[2]]
    asc = (
        await mp.api.get(
            "/v1/payments/search",
            params={"external_reference": "A", "criteria": "asc", "offset": 2},
        )
    ).json()
    assert [p["id"] for p in asc["results"]] == [ids[3]]
    none = (await mp.api.get("/v1/payments/search", params={"external_reference": "Z"})).json()
    assert none["results"] == [] and none["paging"]["total"] == 0


async def test_full_refund(mp):
    pid = (await mp.create(transaction_amount=50)).json()["id"]
    pending = await mp.api.post(f"/v1/payments/{pid}/refunds", json={})
    assert_mp_error(pending, 400)
    await mp.control.approve(pid)
    refund = await mp.api.post(
        f"/v1/payments/{pid}/refunds", json={}, headers={"X-Idempotency-Key": "r1"}
    )
    assert refund.status_code == 201
    r = refund.json()
    assert (r["payment_id"], r["amount"], r["status"]) == (pid, 50.0, "approved")
    same = await mp.api.post(
        f"/v1/payments/{pid}/refunds", json={}, headers={"X-Idempotency-Key": "r1"}
    )
    assert same.json()["id"] == r["id"]
    p = (await mp.api.get(f"/v1/payments/{pid}")).json()
    assert (p["status"], p["status_detail"], p["transaction_amount_refunded"]) == (
        "refunded",
        "refunded",
        50.0,
    )
    listed = (await mp.api.get(f"/v1/payments/{pid}/refunds")).json()
    assert [x["id"] for x in listed] == [r["id"]]
    assert_mp_error(await mp.api.post(f"/v1/payments/{pid}/refunds", json={}), 400)


async def test_partial_refunds_then_rest(mp):
    pid = (await mp.create(transaction_amount=10.5)).json()["id"]
    await mp.control.approve(pid)
    part = await mp.api.post(f"/v1/payments/{pid}/refunds", json={"amount": 3.25})
    assert part.status_code == 201 and part.json()["amount"] == 3.25
    p = (await mp.api.get(f"/v1/payments/{pid}")).json()
    assert (p["status"], p["status_detail"], p["transaction_amount_refunded"]) == (
        "approved",
        "partially_refunded",
        3.25,
    )
    too_much = await mp.api.post(f"/v1/payments/{pid}/refunds", json={"amount": 7.26})
    assert_mp_error(too_much, 400)
    rest = await mp.api.post(f"/v1/payments/{pid}/refunds", json={"amount": 7.25})
    assert rest.status_code == 201
    p = (await mp.api.get(f"/v1/payments/{pid}")).json()
    assert (p["status"], p["transaction_amount_refunded"]) == ("refunded", 10.5)
    assert len(p["refunds"]) == 2


async def test_control_transitions_and_illegal_change(mp):
    pid = (await mp.create()).json()["id"]
    approved = await mp.control.approve(pid)
    assert (approved["status"], approved["status_detail"]) == ("approved", "accredited")
    assert approved["date_approved"] is not None
    assert approved["transaction_details"]["net_received_amount"] == 10.4  # 0.99% fee
    charged = await mp.control.chargeback(pid)
    assert (charged["status"], charged["status_detail"]) == ("charged_back", "settled")
    conflict = await mp.api.post(f"/_sandbox/mp/payments/{pid}/approve")
    assert_mp_error(conflict, 409)
    pid2 = (await mp.create(key="k2")).json()["id"]
    rejected = await mp.control.reject(pid2)
    assert rejected["status"] == "rejected"
    cancel = await mp.api.put(
        f"/v1/payments/{(await mp.create(key='k3')).json()['id']}", json={"status": "cancelled"}
    )
    assert (cancel.json()["status"], cancel.json()["status_detail"]) == (
        "cancelled",
        "by_collector",
    )


async def test_api_fault_429_with_retry_after_then_recovers(mp):
    await mp.control.set_faults(api_error_status=429, api_error_count=2)
    for _ in range(2):
        resp = await mp.create()
        body = assert_mp_error(resp, 429)
        assert resp.headers["Retry-After"] == "1" and body["error"] == "too_many_requests"
    ok = await mp.create()
    assert ok.status_code == 201
    await mp.control.set_faults(api_error_status=503, api_error_count=1)
    assert_mp_error(await mp.api.get(f"/v1/payments/{ok.json()['id']}"), 503)
    assert (await mp.api.get(f"/v1/payments/{ok.json()['id']}")).status_code == 200
    counts = await mp.control.requests()
    assert counts["POST /v1/payments"] == 3
    assert counts["GET /v1/payments/{id}"] == 2


async def test_bad_fault_config_is_rejected(mp):
    resp = await mp.api.post("/_sandbox/mp/faults", json={"duplicat": 2})
    assert_mp_error(resp, 400)
    resp = await mp.api.post("/_sandbox/mp/faults", json={"api_error_status": 418})
    assert_mp_error(resp, 400)


async def test_reset_forgets_everything(mp):
    await mp.create()
    await mp.control.set_faults(drop=True)
    await mp.control.reset()
    assert await mp.control.payments() == []
    assert await mp.control.requests() == {}
    assert (await mp.api.get("/_sandbox/mp/faults")).json()["drop"] is False

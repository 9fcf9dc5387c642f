"""The OpenAPI document and the 400 answers that name the bad field."""

from __future__ import annotations

from tests.helpers.admin import AUTH


async def test_openapi_documents_every_api_route_with_schemas(app, client):
    response = await client.get("/openapi.json", headers=AUTH)
    assert response.status_code == 200
    doc = await response.get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    api_rules = {
        r.rule
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/") or r.rule == "/metrics"
    }
    assert len(doc["paths"]) == len(api_rules)
    assert not any(p.startswith("/console") or p == "/" for p in doc["paths"])
    status = doc["paths"]["/api/status"]["get"]
    assert "application/json" in status["responses"]["200"]["content"]
    block = doc["paths"]["/api/accounts/{account_id}/block"]["post"]
    assert block["requestBody"]["required"] is True
    assert "401" in block["responses"] and "404" in block["responses"]
    action = doc["paths"]["/api/instances/{instance_id}/{action}"]["post"]
    assert "504" in action["responses"]
    csv = doc["paths"]["/api/transactions/ledger.csv"]["get"]
    assert "text/csv" in csv["responses"]["200"]["content"]


async def test_missing_body_field_is_400_naming_it(client):
    response = await client.post("/api/accounts/1/block", headers=AUTH, json={})
    body = await response.get_json()
    assert response.status_code == 400
    assert body["error"] == "validation_error"
    assert body["fields"][0]["field"] == "reason"
    assert "reason" in body["message"]


async def test_bad_query_value_is_400_naming_it(client):
    response = await client.get("/api/orders?status=lost&limit=9999", headers=AUTH)
    body = await response.get_json()
    assert response.status_code == 400
    assert {f["field"] for f in body["fields"]} == {"status", "limit"}


async def test_unknown_body_field_and_broken_json_are_400(client):
    response = await client.post(
        "/api/accounts/1/block", headers=AUTH, json={"reason": "x", "reasn": "typo"}
    )
    assert response.status_code == 400
    assert (await response.get_json())["fields"][0]["field"] == "reasn"
    response = await client.post(
        "/api/accounts/1/block", data="{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "validation_error"


async def test_huge_ids_are_404_not_a_database_error(client):
    response = await client.get(f"/api/orders/{2**70}", headers=AUTH)
    assert response.status_code == 404

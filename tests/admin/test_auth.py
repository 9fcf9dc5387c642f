"""Every route of the admin app answers 401 without a token or with a wrong one, and works
with the right one. Routes come from the app's url_map, so a new one cannot be forgotten."""

from __future__ import annotations

from werkzeug.routing import AnyConverter, IntegerConverter

from core.settings import load_settings
from tests.helpers.admin import AUTH, OLD_TOKEN, TOKEN
from web.admin import create_app
from web.admin.auth import PUBLIC_ENDPOINTS
from web.probes import PROBE_PATHS

WRONG = [
    "Bearer wrong-token-0000000000000",
    f"Basic {TOKEN}",
    "Bearer ",
    TOKEN,
    f"Bearer {TOKEN}x",
    f"bearer {TOKEN[:-1]}",
]
SAMPLES = {"filename": "console.css", "ref": "no-such-payment"}


def _url(rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif isinstance(converter, IntegerConverter):
            values[name] = 987654
        else:
            values[name] = SAMPLES.get(name, "x")
    return rule.build(values)[1]


def _routes():
    from cryptography.fernet import Fernet

    settings = load_settings(
        {"ADMIN_API_TOKEN": TOKEN, "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode()},
        env_file=None,
    )
    app = create_app(settings)
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, _url(rule)))
    return routes


ROUTES = _routes()


def test_the_matrix_covers_the_whole_api():
    endpoints = {endpoint for endpoint, _m, _u in ROUTES}
    for expected in (
        "status.status",
        "monitor.monitor_requests",
        "instances.instance_action",
        "orders.retry_waiting",
        "accounts.block",
        "alerts.acknowledge",
        "indicators.metrics",
        "openapi",
        "console.dashboard",
        "admin_payments.resync_payment",
        "admin_withdrawals.approve",
    ):
        assert expected in endpoints
    assert len(ROUTES) >= 40


async def test_every_route_needs_the_admin_token(app):
    """One app for the whole matrix (fast); failures are collected so all are reported."""
    failures = []
    for endpoint, method, url in ROUTES:
        client = app.test_client()  # no cookie from a previous route
        if url in PROBE_PATHS:  # Kubernetes probes: public (tests/deploy/test_k8s_replicas.py)
            continue
        if endpoint in PUBLIC_ENDPOINTS:  # the console's login form: a bad token is a 401 too
            bad = await client.open(url, method=method, form={"token": "wrong" * 5})
            good = await client.open(url, method=method, form={"token": TOKEN})
            if (bad.status_code, good.status_code) != (401, 302):
                failures.append((method, url, "login", bad.status_code, good.status_code))
            continue
        for header in [None, *WRONG]:
            headers = {"Authorization": header} if header else {}
            response = await client.open(url, method=method, headers=headers)
            if response.status_code != 401:
                failures.append((method, url, header, response.status_code))
        response = await client.open(url, method=method, headers=AUTH)
        if response.status_code == 401 or response.status_code >= 500:
            failures.append((method, url, "right token", response.status_code))
    assert failures == []


async def test_an_unknown_path_is_401_without_a_token_and_404_with_it(client):
    assert (await client.get("/api/nope")).status_code == 401
    response = await client.get("/api/nope", headers=AUTH)
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "Not Found"


async def test_the_previous_token_still_works_during_rotation(client):
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {OLD_TOKEN}"})
    assert response.status_code == 200


async def test_401_is_json_with_a_bearer_challenge(client):
    response = await client.get("/api/instances")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.get_json())["error"] == "unauthorized"


async def test_console_without_session_shows_the_login_form_with_401(client):
    response = await client.get("/")
    assert response.status_code == 401
    assert 'name="token"' in (await response.get_data(as_text=True))

import pytest
from cryptography.fernet import Fernet

from core.settings import load_settings
from web.admin import create_app as create_admin
from web.portal import create_app as create_portal

TOKEN = "admin-token-0123456789abcdef"
OLD_TOKEN = "admin-token-previous-0123456"


def settings_for(tmp_path, database_url, redis_url):
    return load_settings(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_DIR": str(tmp_path / "logs"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ADMIN_API_TOKEN": f"{TOKEN},{OLD_TOKEN}",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PORTAL_PORT": "1",  # nothing listens there: the admin reports the portal as down
        },
        env_file=None,
    )


async def test_portal_health_reports_db_and_redis(tmp_path, database_url, redis_url):
    app = create_portal(settings_for(tmp_path, database_url, redis_url))
    async with app.test_app():
        response = await app.test_client().get("/health")
        body = await response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["db"]["ok"] and body["redis"]["ok"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_portal_health_is_503_when_redis_is_unreachable(tmp_path, database_url):
    from ops.process_tools import free_port

    app = create_portal(settings_for(tmp_path, database_url, f"redis://127.0.0.1:{free_port()}/0"))
    async with app.test_app():
        response = await app.test_client().get("/health")
        body = await response.get_json()
    assert response.status_code == 503
    assert body["status"] == "degraded" and body["redis"]["ok"] is False and body["db"]["ok"]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-0000000000", f"Basic {TOKEN}", "Bearer ", TOKEN]
)
async def test_admin_rejects_missing_or_wrong_token(tmp_path, database_url, redis_url, header):
    app = create_admin(settings_for(tmp_path, database_url, redis_url))
    headers = {"Authorization": header} if header else {}
    async with app.test_app():
        response = await app.test_client().get("/api/status", headers=headers)
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "unauthorized"


async def test_admin_status_with_either_rotation_token(tmp_path, database_url, redis_url):
    app = create_admin(settings_for(tmp_path, database_url, redis_url))
    async with app.test_app():
        client = app.test_client()
        for token in (TOKEN, OLD_TOKEN):
            response = await client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
            body = await response.get_json()
            assert response.status_code == 200
            assert body["db"]["ok"] and body["redis"]["ok"]
            assert body["services"]["portal"]["ok"] is False  # port 1: nobody there
            assert body["services"]["orchestrator"]["ok"] is False  # no heartbeat yet
            assert body["status"] == "degraded"
            assert body["orders"] == {"pending": 0, "waiting_stock": 0, "awaiting_fulfilment": 0}
            assert body["instances"]["online"] == 0

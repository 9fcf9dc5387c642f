"""An admin app on a fresh database and Redis, its test client, a stand-in orchestrator; the
token, settings and factories are in `tests.helpers.admin`."""

from __future__ import annotations

import pytest

from tests.helpers.admin import admin_settings
from web.admin import create_app


@pytest.fixture
async def app(tmp_path, db, redis_url):
    """The admin app serving (DB + Redis connected); control commands time out after 1 s."""
    application = create_app(admin_settings(tmp_path, db, redis_url))
    application.config["ADMIN_CONTROL_TIMEOUT"] = 1.0
    async with application.test_app():
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis(app):
    return app.config["REDIS"]


@pytest.fixture
async def orchestrator(redis):
    """A stand-in orchestrator that answers every control command (records what it got)."""
    import asyncio

    from fleet import control_protocol

    received: list = []
    answers: dict = {}  # action -> (ok, code, state)

    async def serve() -> None:
        await control_protocol.ensure_group(redis)
        while True:
            for cmd in await control_protocol.read_commands(redis, "stand-in", block_ms=100):
                received.append(cmd)
                ok, code, state = answers.get(
                    str(cmd.action), (True, control_protocol.ResultCode.OK, "online")
                )
                await control_protocol.reply(
                    redis, cmd, control_protocol.result(ok, code, f"{cmd.action} done", state)
                )

    task = asyncio.create_task(serve())
    yield type("Orch", (), {"received": received, "answers": answers})
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

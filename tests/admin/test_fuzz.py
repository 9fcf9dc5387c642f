"""Schemathesis against a real admin server (hypercorn on a free port): no 5xx, no answer that
breaks the published schema. Bounded: a few examples per operation."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from ops.process_tools import free_port

pytestmark = pytest.mark.e2e
TOKEN = "fuzz-token-0123456789abcdef"
MAX_EXAMPLES = 12
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


async def _seed(url: str) -> None:
    """A few objects with id 1, so the documented example ids hit real rows."""
    from core.db import close_db, init_db
    from fleet.models import Alert, AlertKind
    from shop.models import AdminRequest, AdminRequestKind, Withdrawal
    from tests.helpers.admin import (
        add_stock,
        make_instance,
        make_order,
        make_tenant,
        make_variation,
    )

    await init_db(url)
    try:
        shop = await make_tenant()
        bot = await make_instance(shop)
        var = await make_variation(shop)
        await add_stock(var, 1)
        await make_order(var, status="waiting_stock", instance=bot)
        await AdminRequest.create(kind=AdminRequestKind.SUPPORT, tenant=shop, subject="help")
        await Alert.create(kind=AlertKind.CRASHLOOP, instance=bot, tenant=shop, message="loop")
        await Withdrawal.create(
            tenant=shop, amount_cents=100, pix_key_type="email", pix_key="a@b.c"
        )
    finally:
        await close_db()


def _stand_in_orchestrator(redis_url: str, stop: threading.Event) -> None:
    """Answers every control command, so instance actions do not wait for a timeout."""
    from core.redis import connect
    from fleet import control_protocol

    async def serve() -> None:
        redis = connect(redis_url)
        await control_protocol.ensure_group(redis)
        while not stop.is_set():
            for cmd in await control_protocol.read_commands(redis, "fuzz", block_ms=200):
                await control_protocol.reply(
                    redis,
                    cmd,
                    control_protocol.result(True, control_protocol.ResultCode.OK, "done", "online"),
                )
        await redis.aclose()

    asyncio.run(serve())


@pytest.fixture
def admin_server(tmp_path, sqlite_template, redis_url):
    db = tmp_path / "fuzz.sqlite3"
    shutil.copy(sqlite_template, db)
    asyncio.run(_seed(f"sqlite://{db}"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{db}",
        "REDIS_URL": redis_url,
        "ADMIN_PORT": str(port),
        "ADMIN_BIND": "127.0.0.1",
        "ADMIN_API_TOKEN": TOKEN,
        "PORTAL_PORT": str(free_port()),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_DIR": str(tmp_path / "logs"),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.admin"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stop = threading.Event()
    orch = threading.Thread(target=_stand_in_orchestrator, args=(redis_url, stop), daemon=True)
    orch.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        stop.set()
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
        orch.join(5)
        assert b"Traceback" not in err, err.decode()[-3000:]


def test_fuzz_finds_no_5xx_and_no_schema_violation(admin_server, tmp_path):
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{admin_server}/openapi.json",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--no-color",
            "--generation-database",
            "none",
            "--request-timeout",
            "15",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,  # seconds; ~20 s alone, far more beside the rest of the suite on 2 cores
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

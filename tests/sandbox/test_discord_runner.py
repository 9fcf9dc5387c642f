"""`python -m sandbox` as a separate process: ready file, both services, clean SIGTERM."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from sandbox.discord.client import DiscordSandbox
from sandbox.server import SandboxProcess, run_sandbox

pytestmark = pytest.mark.e2e


async def test_subprocess_serves_discord_and_exits_on_sigterm():
    proc = SandboxProcess("--mp-webhook-secret", "s3cret").start()
    try:
        urls = proc.urls
        assert urls["DISCORD_API_BASE"].startswith("http://127.0.0.1:")
        assert urls["DISCORD_API_BASE"].endswith("/api/v10")
        async with DiscordSandbox(urls["DISCORD_OAUTH_BASE"]) as dc:
            bot = await dc.create_bot("Loja")
            async with httpx.AsyncClient() as http:
                gw = await http.get(
                    urls["DISCORD_API_BASE"] + "/gateway/bot",
                    headers={"Authorization": f"Bot {bot.token}"},
                )
        assert gw.json()["url"] == urls["DISCORD_OAUTH_BASE"].replace("http", "ws") + "/gateway"
        if urls["MERCADOPAGO_API_BASE"]:
            async with httpx.AsyncClient() as http:
                mp = await http.get(urls["MERCADOPAGO_API_BASE"] + "/v1/payments/1")
            assert mp.status_code in (401, 404)  # listening (auth or unknown payment)
    finally:
        proc.stop()
    assert proc.proc.returncode == 0


def test_refuses_non_loopback_host():
    res = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2
    assert "loopback only" in res.stderr


async def test_in_process_runner_picks_free_ports():
    async with run_sandbox("127.0.0.1", 0, 0) as a, run_sandbox("127.0.0.1", 0, None) as b:
        assert a.discord_port != b.discord_port
        assert b.mp_api_base is None
        async with httpx.AsyncClient() as http:
            health = await http.get(a.discord_base + "/_sandbox/health")
        assert health.json()["ok"] is True

"""The standalone runner: python -m sandbox.mercadopago."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox.mercadopago.brcode import parse_brcode
from sandbox.mercadopago.testing import pix_body

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_standalone_runner_serves_api_and_control():
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.mercadopago",
            "--port",
            str(port),
            "--webhook-secret",
            "S",
            "--access-token",
            "APP_USR-1-2-3-424242",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/mp/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "runner exited early"
            assert time.monotonic() < deadline, "runner did not start"
            time.sleep(0.05)
        headers = {"Authorization": "Bearer APP_USR-1-2-3-424242", "X-Idempotency-Key": "a"}
        resp = httpx.post(f"{base}/v1/payments", json=pix_body(), headers=headers)
        assert resp.status_code == 201 and resp.json()["collector_id"] == 424242
        assert parse_brcode(resp.json()["point_of_interaction"]["transaction_data"]["qr_code"])
        denied = httpx.post(
            f"{base}/v1/payments",
            json=pix_body(),
            headers={"Authorization": "Bearer nope", "X-Idempotency-Key": "b"},
        )
        assert denied.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)

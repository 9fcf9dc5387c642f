"""`vitrine demo` + `vitrine demo buy`: the sandbox, the platform and a seeded store; a purchase
is delivered; Ctrl-C leaves no process behind."""

from __future__ import annotations

import signal
import subprocess

import pytest

from ops.demo import demo_processes
from tests.ops.demo_harness import VITRINE, alive, descendants, running_demo

pytestmark = pytest.mark.e2e


def test_demo_runs_a_purchase_and_stops_every_process(tmp_path, redis_url):
    with running_demo(tmp_path, redis_url) as demo:
        demo.wait_line("demo ready", timeout=50)
        assert "/auth/discord" in demo.output and "vitrine demo buy" in demo.output

        bought = subprocess.run(
            [VITRINE, "demo", "buy", *demo.args],
            env=demo.env,
            capture_output=True,
            text=True,
            timeout=40,
            check=False,
        )
        assert bought.returncode == 0, bought.stdout + bought.stderr
        assert "PIX shown for order #" in bought.stdout
        delivered = [
            line for line in bought.stdout.splitlines() if line.startswith("delivered item: DEMO-")
        ]
        assert delivered, bought.stdout

        started = descendants(demo.proc.pid) | set(demo_processes(demo.dir))
        assert len(started) >= 6, started  # sandbox, supervisord, services, worker
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(40) == 0
        demo.wait_line("demo stopped", timeout=5)
        survivors = [pid for pid in started if alive(pid)]
        assert survivors == [] and demo_processes(demo.dir) == []

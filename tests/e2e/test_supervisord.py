"""The quick start for real: `vitrine run` brings up supervisord with every service."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ops.process_tools import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s (last={last!r})")


@pytest.fixture
def platform(tmp_path, redis_url):
    """`vitrine run --config` in a scratch directory, with an external (test) Redis."""
    shutil.copy(ROOT / "supervisord.conf", tmp_path / "supervisord.conf")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PORTAL_PORT": str(free_port()),
        "ADMIN_PORT": str(free_port()),
        "REDIS_URL": redis_url,
        "DATA_DIR": "data",
        "LOG_DIR": "logs",
    }
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "vitrine"),
            "run",
            "--config",
            str(tmp_path / "supervisord.conf"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ctl = [
        str(Path(sys.executable).parent / "supervisorctl"),
        "-c",
        str(tmp_path / "supervisord.conf"),
    ]
    try:
        yield {
            "env": env,
            "cwd": tmp_path,
            "ctl": ctl,
            "proc": proc,
            "portal": f"http://127.0.0.1:{env['PORTAL_PORT']}",
            "admin": f"http://127.0.0.1:{env['ADMIN_PORT']}",
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def ctl(platform, *args) -> str:
    return subprocess.run(
        platform["ctl"] + list(args),
        cwd=platform["cwd"],
        env=platform["env"],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout


def portal_ok(platform):
    response = httpx.get(platform["portal"] + "/health", timeout=2)
    return response.status_code == 200 and response.json()["status"] == "ok"


def test_run_starts_every_service_and_supervisord_restarts_a_killed_portal(platform):
    wait_for(lambda: portal_ok(platform), timeout=60)

    def all_running():
        status = ctl(platform, "status")
        states = {line.split()[0]: line.split()[1] for line in status.splitlines() if line}
        return (
            all(states.get(n) == "RUNNING" for n in ("portal", "admin", "orchestrator")) and status
        )

    status = wait_for(all_running, timeout=30)
    # REDIS_URL is external here, so the embedded redis program exits cleanly.
    assert "EXITED" in status.split("redis", 1)[1].splitlines()[0]

    old_pid = int(ctl(platform, "pid", "portal").strip())
    os.kill(old_pid, signal.SIGKILL)
    new_pid = wait_for(
        lambda: (p := int(ctl(platform, "pid", "portal").strip() or 0)) not in (0, old_pid) and p,
        timeout=30,
    )
    assert new_pid != old_pid
    wait_for(lambda: portal_ok(platform), timeout=30)

    secrets = (platform["cwd"] / "data" / "secrets.env").read_text()
    token = next(
        line.split("=", 1)[1]
        for line in secrets.splitlines()
        if line.startswith("ADMIN_API_TOKEN=")
    )

    def admin_ok():
        body = httpx.get(
            platform["admin"] + "/api/status",
            timeout=5,
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        return body["status"] == "ok" and body

    body = wait_for(admin_ok, timeout=30)
    assert body["services"]["orchestrator"]["heartbeat_age_s"] < 30
    logs = platform["cwd"] / "logs"
    assert (logs / "portal.log").exists() and (logs / "supervisord.log").exists()
    assert token not in (logs / "admin.log").read_text()


def test_restore_on_a_running_platform_stops_restores_and_restarts_healthy(platform, tmp_path):
    wait_for(lambda: portal_ok(platform), timeout=60)
    vitrine = str(Path(sys.executable).parent / "vitrine")
    conf = str(platform["cwd"] / "supervisord.conf")
    archive = str(tmp_path / "b.tar.gz")

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [vitrine, *a],
            cwd=platform["cwd"],
            env=platform["env"],
            capture_output=True,
            text=True,
            timeout=120,
        )

    backup = run("backup", "--to", archive)
    assert backup.returncode == 0, backup.stderr
    old_pid = int(ctl(platform, "pid", "portal").strip())
    restored = run("restore", archive, "--config", conf)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "stopping portal, admin, orchestrator" in restored.stdout
    assert "health check passed" in restored.stdout
    assert int(ctl(platform, "pid", "portal").strip()) != old_pid
    assert portal_ok(platform)

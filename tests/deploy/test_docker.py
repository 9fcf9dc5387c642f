"""Docker on a Linux host: the compose file is valid (compose-spec schema, offline) and keeps
its state in volumes the image's user can write; the entrypoint makes root-owned bind mounts
writable and drops to uid 10001; scripts/run-bot.sh, stop-bot.sh (and the .ps1 twins where
PowerShell exists) drive `docker compose` as documented, checked with a stand-in `docker` on
PATH that records its arguments (no Docker daemon is needed). The image itself is built by
.ci/run where `docker info` works."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
SERVICE_UID = 10001


# --- compose file -------------------------------------------------------------------------
def test_docker_compose_file_validates_against_the_compose_spec_offline():
    """The compose-spec JSON schema vendored in check-jsonschema (pinned in .ci/run): the
    same schema `docker compose config` applies, without the compose plugin or a network."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("check-jsonschema not installed (.ci/run installs it)")
    run = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_docker_compose_state_is_in_named_volumes_and_ports_stay_private():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    bot = spec["services"]["bot"]
    mounts = dict(v.split(":", 1) for v in bot["volumes"])
    # a bind mount Docker creates is root's: uid 10001 could not write it
    assert mounts == {"data": "/app/data", "logs": "/app/logs", "backups": "/app/backups"}
    assert set(mounts) <= set(spec["volumes"]), "every named volume is declared"
    admin = [p for p in bot["ports"] if p.endswith(":3000")]
    assert admin and all(p.startswith("127.0.0.1:") for p in admin), "admin on loopback only"
    for name, service in spec["services"].items():
        for dep in service.get("depends_on", {}):
            assert dep in spec["services"], f"{name} depends on unknown {dep}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "data", "backups"} <= set(ignored), "secrets/state stay out of builds"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "VITRINE_ENV=production" in dockerfile
    assert 'ENTRYPOINT ["tini", "--", "vitrine-entrypoint"]' in dockerfile
    # a new named volume takes the ownership of the image's folder: made and given to 10001
    assert "chown -R vitrine:vitrine /app/data /app/logs /app/backups" in dockerfile
    assert "USER 10001:10001" in dockerfile


# --- entrypoint ------------------------------------------------------------------------------
@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder uid 10001 can reach (pytest's tmp_path is under a 0700 folder of root's)."""
    folder = Path(tempfile.mkdtemp(prefix="vitrine-entrypoint-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_docker_entrypoint_as_root_fixes_bind_mounts_and_drops_to_the_service_user(open_tmp):
    if os.geteuid() != 0:
        pytest.skip("entrypoint ownership fix needs root (CI runs as root)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    data = open_tmp / "data"
    data.mkdir()  # as Docker creates a missing bind-mount source: root's, 0755
    (data / "vitrine.sqlite3").write_text("root wrote this")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(data),
        "LOG_DIR": str(open_tmp / "logs"),
        "BACKUP_DIR": str(open_tmp / "backups"),
        "VITRINE_HOME": str(open_tmp),
    }
    script = 'id -u; id -g; echo ok >> "$DATA_DIR/vitrine.sqlite3"; touch "$LOG_DIR/portal.log"'
    run = subprocess.run(
        [str(SCRIPTS / "docker-entrypoint.sh"), "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[:2] == [str(SERVICE_UID), str(SERVICE_UID)]
    assert (data / "vitrine.sqlite3").read_text().endswith("ok\n")
    for path in (data, data / "vitrine.sqlite3", open_tmp / "logs" / "portal.log"):
        assert path.stat().st_uid == SERVICE_UID
    backups = (open_tmp / "backups").stat()
    assert backups.st_uid == SERVICE_UID and stat.S_IMODE(backups.st_mode) == 0o700


def test_docker_entrypoint_as_the_service_user_runs_the_command_unchanged(open_tmp):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VITRINE_UID": str(os.geteuid()),
    }
    cmd = [str(SCRIPTS / "docker-entrypoint.sh"), "sh", "-c", 'echo "$0 $1"', "a", "b"]
    if os.geteuid() == 0:  # as Kubernetes runs it: `runAsUser: 10001`, no root at all
        cmd = ["setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}", "--clear-groups"]
        cmd += [str(SCRIPTS / "docker-entrypoint.sh"), "sh", "-c", 'id -u; echo "$0 $1"', "a", "b"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30, cwd=open_tmp)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "a b"


# --- run-bot / stop-bot ---------------------------------------------------------------------
STAND_IN = """#!/bin/sh
# stand-in for {name}: one line per call with its arguments
printf '%s\\n' "$*" >> "{log}"
{body}
"""


def _stand_in(folder: Path, name: str, log: Path, body: str = "exit 0") -> None:
    path = folder / name
    path.write_text(STAND_IN.format(name=name, log=log, body=body))
    path.chmod(0o755)


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if ok else b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[int]:
    """A stand-in portal answering /health on a free loopback port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the scripts in a tree of their own (they `cd` to their parent folder)."""
    (tmp_path / "scripts").mkdir()
    for name in ("run-bot.sh", "stop-bot.sh", "run-bot.ps1", "stop-bot.ps1"):
        shutil.copy2(SCRIPTS / name, tmp_path / "scripts" / name)
    (tmp_path / "bin").mkdir()
    return tmp_path


def _run(tree: Path, script: str, *args: str, env: dict[str, str] | None = None):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed (.ci/run installs it)")
    full = {
        "PATH": f"{tree / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tree),
        **(env or {}),
    }
    return subprocess.run(
        ["bash", str(tree / "scripts" / script), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_run_bot_sh_builds_starts_and_waits_for_the_portal_health(tree, portal):
    calls = tree / "docker.calls"
    _stand_in(tree / "bin", "docker", calls)
    (tree / ".env").write_text(f"VITRINE_ENV=production\nPORTAL_HOST_PORT={portal}\n")
    run = _run(tree, "run-bot.sh", "--docker", "10")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"healthy: http://127.0.0.1:{portal}/health" in run.stdout
    assert calls.read_text().splitlines() == ["compose up -d --build", "compose ps"]


def test_docker_run_bot_sh_fails_with_the_logs_command_when_the_portal_never_answers(tree):
    calls = tree / "docker.calls"
    _stand_in(tree / "bin", "docker", calls)
    run = _run(tree, "run-bot.sh", "--docker", "1", env={"PORTAL_HOST_PORT": str(_free_port())})
    assert run.returncode == 1
    assert "docker compose logs bot --tail=120" in run.stderr
    assert calls.read_text().splitlines() == ["compose up -d --build"]


def test_docker_run_bot_sh_stops_when_compose_up_fails(tree):
    calls = tree / "docker.calls"
    _stand_in(tree / "bin", "docker", calls, body="echo 'no daemon' >&2; exit 17")
    run = _run(tree, "run-bot.sh", "--docker", "5")
    assert run.returncode == 17 and "no daemon" in run.stderr
    assert calls.read_text().splitlines() == ["compose up -d --build"]


def test_docker_stop_bot_sh_stops_the_workers_then_the_containers(tree):
    calls = tree / "docker.calls"
    _stand_in(tree / "bin", "docker", calls)
    run = _run(tree, "stop-bot.sh", "--docker")
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == [
        "compose exec -T bot vitrine fleet stop",
        "compose stop",
        "compose ps",
    ]


def test_docker_stop_bot_sh_still_stops_the_containers_when_the_orchestrator_is_down(tree):
    calls = tree / "docker.calls"
    body = 'case "$*" in *"fleet stop"*) exit 1;; esac; exit 0'
    _stand_in(tree / "bin", "docker", calls, body=body)
    run = _run(tree, "stop-bot.sh", "--docker")
    assert run.returncode == 0
    assert "could not stop the workers" in run.stderr
    assert calls.read_text().splitlines()[1:] == ["compose stop", "compose ps"]


def test_docker_free_run_bot_sh_starts_vitrine_run_from_the_venv(tree, portal):
    """Without --docker the scripts use .venv (stand-ins for its programs record the calls)."""
    bin_ = tree / ".venv" / "bin"
    bin_.mkdir(parents=True)
    calls = tree / "venv.calls"
    _stand_in(bin_, "vitrine", calls)
    _stand_in(bin_, "supervisorctl", calls, body='case "$*" in *" pid") exit 1;; esac; exit 0')
    _stand_in(bin_, "python", calls, body=f"echo {portal}")
    run = _run(tree, "run-bot.sh", "10")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"healthy: http://127.0.0.1:{portal}/health" in run.stdout
    lines = calls.read_text().splitlines()
    assert "run" in lines and "-c supervisord.conf status" in lines


def test_docker_free_stop_bot_sh_stops_the_workers_then_supervisord(tree):
    bin_ = tree / ".venv" / "bin"
    bin_.mkdir(parents=True)
    calls = tree / "venv.calls"
    _stand_in(bin_, "vitrine", calls)
    state = tree / "running"
    state.write_text("yes")
    # `pid` answers while running; `shutdown` stops it
    body = f'case "$*" in *" pid") test -f "{state}";; *" shutdown") rm -f "{state}";; esac'
    _stand_in(bin_, "supervisorctl", calls, body=body)
    run = _run(tree, "stop-bot.sh")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("stopped")
    lines = calls.read_text().splitlines()
    assert lines.index("fleet stop") < lines.index("-c supervisord.conf shutdown")


@pytest.mark.parametrize("script", ["run-bot.ps1", "stop-bot.ps1"])
def test_docker_powershell_scripts_drive_compose(tree, portal, script):
    pwsh = shutil.which("pwsh")
    if pwsh is None:
        pytest.skip("pwsh not installed: the .ps1 scripts were not run")
    calls = tree / "docker.calls"
    _stand_in(tree / "bin", "docker", calls)
    env = {
        "PATH": f"{tree / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tree),
        "PORTAL_HOST_PORT": str(portal),
    }
    run = subprocess.run(
        [pwsh, "-NoProfile", "-File", str(tree / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    expected = (
        ["compose up -d --build", "compose ps"]
        if script == "run-bot.ps1"
        else ["compose exec -T bot vitrine fleet stop", "compose stop", "compose ps"]
    )
    assert calls.read_text().splitlines() == expected


def test_docker_entrypoint_never_hands_a_symlink_s_target_to_the_service_user(open_tmp):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("entrypoint ownership fix needs root and setpriv (CI has both)")
    data = open_tmp / "data"
    data.mkdir()
    outside = open_tmp / "root-only"
    outside.write_text("secret")
    (data / "link").symlink_to(outside)  # planted by a compromised service
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(data),
        "LOG_DIR": str(open_tmp / "logs"),
        "BACKUP_DIR": str(open_tmp / "backups"),
        "VITRINE_HOME": str(open_tmp),
    }
    run = subprocess.run(
        [str(SCRIPTS / "docker-entrypoint.sh"), "true"], env=env, capture_output=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert outside.stat().st_uid == 0
    assert (data / "link").lstat().st_uid == SERVICE_UID

"""Every runbook action without curl: each state-changing admin route has a `vitrine` command
shown in both runbooks; every `vitrine` command is in the README table and the runbooks; the
runbooks' token one-liners read `data/secrets.env` and really answer."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ops.cli import build_parser
from tests.helpers.admin import OLD_TOKEN, TOKEN, admin_settings
from tests.ops.test_ops_cli import served  # noqa: F401 - a fixture
from tests.ops.test_runbook_commands import RUNBOOKS, code_lines
from web.admin import create_app

README = Path(__file__).resolve().parents[2] / "README.md"

# Each state-changing admin route → the `vitrine` command lines that do the same (shown in
# both runbooks). A new POST route needs its command here, or a reason in API_ONLY.
ACTIONS: dict[str, list[str]] = {
    "/api/payments/<ref>/resync": ["vitrine resync "],
    "/api/withdrawals/<int:withdrawal_id>/approve": ["vitrine withdrawals approve "],
    "/api/withdrawals/<int:withdrawal_id>/complete": ["vitrine withdrawals complete "],
    "/api/withdrawals/<int:withdrawal_id>/reject": ["vitrine withdrawals reject "],
    "/api/withdrawals/<int:withdrawal_id>/retry": ["vitrine withdrawals retry "],
    "/api/withdrawals/<int:withdrawal_id>/manual": ["vitrine withdrawals manual "],
    "/api/requests/<int:request_id>/resolve": ["vitrine requests resolve "],
    "/api/requests/<int:request_id>/answer": [
        "vitrine requests answer ",
    ],
    "/api/instances/<int:instance_id>/<any(restart, suspend, resume, stop, start):action>": [
        "vitrine restart ",
        "vitrine instances",
    ],
    "/api/orders/retry-waiting-stock": ["vitrine retry-waiting-stock"],
    "/api/orders/<int:order_id>/refund": ["vitrine refund "],
    "/api/accounts/<int:account_id>/block": ["vitrine accounts block "],
    "/api/accounts/<int:account_id>/unblock": ["vitrine accounts unblock "],
    "/api/alerts/<int:alert_id>/acknowledge": ["vitrine alerts ack "],
    "/api/ratings/<int:rating_id>/delete": ["vitrine ratings delete "],
}
API_ONLY: dict[str, str] = {}


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


def _vitrine_lines(runbook: Path) -> list[str]:
    return [line for line in code_lines(runbook) if line.startswith("vitrine ")]


def test_every_state_changing_admin_route_has_a_vitrine_command_in_both_runbooks(tmp_path):
    app = create_app(admin_settings(tmp_path, "sqlite://:memory:", "redis://127.0.0.1:9/0"))
    posts = {
        r.rule
        for r in app.url_map.iter_rules()
        if "POST" in r.methods and r.rule.startswith("/api/")
    }
    unmapped = posts - ACTIONS.keys() - API_ONLY.keys()
    assert not unmapped, f"POST routes with no `vitrine` command: {sorted(unmapped)}"
    for runbook in RUNBOOKS:
        lines = _vitrine_lines(runbook)
        for rule, prefixes in ACTIONS.items():
            for prefix in prefixes:
                assert any(line.startswith(prefix) for line in lines), (
                    f"{runbook.name}: no `{prefix.strip()}` for {rule}"
                )


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.name)
def test_every_vitrine_command_is_in_the_runbook_and_the_readme_table(runbook):
    shown = {shlex.split(line)[1] for line in _vitrine_lines(runbook)}
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `vitrine ")]
    in_table = {
        name
        for row in rows
        for found in re.findall(r"`vitrine ([a-z-]+(?:\\\|[a-z-]+)*)", row)
        for name in found.split("\\|")
    }
    for name in _commands():
        assert name in shown, f"{runbook.name} shows no `vitrine {name}` command"
        assert name in in_table, f"README's command table has no `vitrine {name}` row"


def _one_liner(runbook: Path, start: str) -> str:
    (line,) = [
        line for line in code_lines(runbook) if line.startswith(start) and "secrets.env" in line
    ]
    return line


def test_runbooks_give_token_one_liners_that_read_data_secrets_env():
    for runbook in RUNBOOKS:
        sh = _one_liner(runbook, "curl -s -H \"Authorization: Bearer $(grep '^ADMIN_API_TOKEN=")
        ps = _one_liner(runbook, "Invoke-WebRequest")
        assert sh.endswith("http://127.0.0.1:3000/api/status")
        assert "data/secrets.env" in ps and ps.endswith("http://127.0.0.1:3000/api/status")
        assert _one_liner(runbook, "$t = if ($env:ADMIN_API_TOKEN)")


async def test_the_bash_one_liner_reads_the_first_token_from_secrets_env(served, tmp_path):
    port = served.config["VITRINE_SETTINGS"].admin_port
    (tmp_path / "data").mkdir(exist_ok=True)
    # As core.secrets_store writes it: a comment header, KEY=value lines, several tokens
    # separated by commas during a rotation (the first one is current).
    (tmp_path / "data" / "secrets.env").write_text(
        f"# Generated by Vitrine\nADMIN_API_TOKEN={TOKEN},{OLD_TOKEN}\nSTOCK_HASH_KEY=x\n"
    )
    line = _one_liner(RUNBOOKS[0], 'curl -s -H "Authorization').replace(
        "127.0.0.1:3000", f"127.0.0.1:{port}"
    )
    assert line == _one_liner(RUNBOOKS[1], 'curl -s -H "Authorization').replace(
        "127.0.0.1:3000", f"127.0.0.1:{port}"
    )
    import asyncio

    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", line],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    body = json.loads(done.stdout)
    assert done.returncode == 0 and "services" in body and body["db"]["ok"] is True


def test_the_powershell_one_liners_parse(tmp_path):
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("PowerShell is not installed here: the one-liners are checked for shape only")
    script = _one_liner(RUNBOOKS[0], "$t = if ($env:ADMIN_API_TOKEN)")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "secrets.env").write_text(f"ADMIN_API_TOKEN={TOKEN},{OLD_TOKEN}\n")
    done = subprocess.run(
        [pwsh, "-NoProfile", "-Command", script + "; $h.Authorization"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == f"Bearer {TOKEN}"

"""Every `vitrine …` command and every admin endpoint the runbooks show exists as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from ops.cli import build_parser
from tests.helpers.admin import admin_settings
from web.admin import create_app

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNBOOKS = [DOCS / "runbook.md", DOCS / "runbook.en.md"]


def code_lines(path: Path) -> list[str]:
    lines, inside = [], False
    for line in path.read_text().splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line.split("  #")[0].strip())
    return lines


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.name)
def test_every_vitrine_command_parses(runbook):
    commands = [line for line in code_lines(runbook) if line.startswith("vitrine ")]
    assert len(commands) >= 10
    parser = build_parser()
    for line in commands:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"{runbook.name}: `{line}` is not a valid vitrine command")


@pytest.mark.parametrize("runbook", RUNBOOKS, ids=lambda p: p.name)
def test_every_admin_endpoint_exists_with_its_method(runbook, tmp_path):
    app = create_app(admin_settings(tmp_path, "sqlite://:memory:", "redis://127.0.0.1:9/0"))
    adapter = app.url_map.bind("127.0.0.1")
    calls = []
    for line in code_lines(runbook):
        if not line.startswith("curl") or "$H" not in line:
            continue
        method = "POST" if "-X POST" in line else "GET"
        target = re.search(r'"?\$H(/[^"\s]*)"?', line).group(1)
        path = urlsplit(target).path.replace("$", "")
        calls.append((method, path))
        try:
            adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed):
            pytest.fail(f"{runbook.name}: {method} {path} is not an admin route")
    assert ("POST", "/api/orders/retry-waiting-stock") in calls
    assert len(calls) >= 15


def test_both_runbooks_cover_the_same_commands():
    starts = ("vitrine", "curl", "supervisorctl", "scripts/", "make", "docker")
    pt, en = (
        {
            line
            for line in code_lines(p)
            if line.startswith(starts) and "-o " not in line and "-d '" not in line
        }
        for p in RUNBOOKS
    )
    assert pt == en

"""The reference docs name what the code has: docs/configuration.md lists every environment
variable the code reads (found by an `ast` scan of the settings parsers' and tuning knobs'
calls), the portal's route table names every portal route, every screenshot in
docs/screenshots/ is linked from docs/portal.md (and every link there has its file), every
relative link in README.md and docs/ reaches its file and heading, and every `vitrine` command
the docs name exists (their example lines parse)."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from ops.cli import build_parser
from tests.helpers.portal import portal_settings
from tests.ops.test_runbook_commands import code_lines
from web.portal import create_app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGES = ("core", "fleet", "shop", "worker", "web", "reconciler", "orchestrator", "ops")
# The functions that read one variable (its name is the first argument): the settings
# parsers (`core/settings.py`, `core/*_settings.py`), the tuning parser and its wrappers.
READERS = {
    "get",
    "_int",
    "_url",
    "_secret",
    "_http_url",
    "_emails",
    "tuning_float",
    "tuning_int",
    "tuning_name",
    "tuning_path",
    "tuning_list",
    "knob",
}
ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+")


def _name_arg(call: ast.Call) -> str | None:
    """The variable a reader call reads: the first string argument (after `env`/`get`)."""
    for arg in call.args[:2]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value if ENV_NAME.fullmatch(arg.value) else None
    return None


def _is_app_config(func: ast.expr) -> bool:
    """`app.config.get("X")` reads Quart's config, not the environment."""
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "config"
    )


def env_vars_read() -> dict[str, str]:
    """Every environment variable the production packages read -> one module reading it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            constants = {
                t.id: n.value.value
                for n in ast.walk(tree)
                if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                for t in n.targets
                if isinstance(t, ast.Name)
                and isinstance(n.value.value, str)
                and ENV_NAME.fullmatch(n.value.value)
            }
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or _is_app_config(node.func):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in READERS:
                    continue
                var = _name_arg(node)
                if var is None and node.args and isinstance(node.args[0], ast.Name):
                    var = constants.get(node.args[0].id)
                if var and ENV_NAME.fullmatch(var):
                    found.setdefault(var, str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_the_settings_and_the_tuning_knobs():
    found = env_vars_read()
    for known in (
        "DATABASE_URL",
        "TOKEN_ENCRYPTION_KEYS",
        "MERCADOPAGO_CLIENT_ID",
        "ALERT_SMTP_HOST",
        "VITRINE_LEASE_TTL_S",
        "VITRINE_ORCH_ON_STOP",
        "VITRINE_ACCESS_RECHECK_S",
        "PAYOUT_MODE",
    ):
        assert known in found, known


def test_configuration_md_lists_every_environment_variable_the_code_reads():
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", text))
    missing = {v: where for v, where in env_vars_read().items() if v not in documented}
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_the_portal_route_table_names_every_portal_route(tmp_path):
    app = create_app(portal_settings(tmp_path, "sqlite://:memory:", "redis://127.0.0.1:9/0"))
    text = (DOCS / "portal.md").read_text()
    table = text.split("## Pages and routes", 1)[1].split("\n## ", 1)[0]
    shown = {
        re.sub(r"<[^>]+>", "<>", path) for path in re.findall(r"`(?:[A-Z/]+ )?(/[^` ]*)", table)
    }
    missing = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "<>", rule.rule)
        if path.startswith("/static/"):
            continue
        if path.split("?")[0] not in shown:
            missing.append(rule.rule)
    assert not missing, f"portal routes not in docs/portal.md's table: {sorted(missing)}"


def test_every_screenshot_is_linked_from_portal_md_and_every_link_has_its_file():
    text = (DOCS / "portal.md").read_text()
    linked = set(re.findall(r"\(screenshots/([\w.-]+\.png)\)", text))
    files = {p.name for p in (DOCS / "screenshots").glob("*.png")}
    assert linked - files == set(), f"linked but missing: {sorted(linked - files)}"
    assert files - linked == set(), f"not linked from docs/portal.md: {sorted(files - linked)}"
    readme = (ROOT / "README.md").read_text()
    for name in re.findall(r"\(docs/screenshots/([\w.-]+\.png)\)", readme):
        assert name in files, f"README links docs/screenshots/{name}, which does not exist"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    found, inside = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside and line.startswith("#"):
            found.add(_slug(line.lstrip("#")))
    return found


def test_every_relative_link_in_the_docs_reaches_its_file_and_heading():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target, fragment in re.findall(r"\]\(([^)\s#]*)(?:#([^)\s]+))?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.name}: {target} does not exist")
            elif fragment and path.suffix == ".md" and fragment not in _anchors(path):
                broken.append(f"{page.name}: {target}#{fragment} has no such heading")
    assert not broken, "\n".join(broken)


def test_every_vitrine_command_the_docs_name_exists_and_their_examples_parse():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for page in pages:
        for name in re.findall(r"`vitrine ([a-z][a-z-]*)", page.read_text()):
            assert name in sub.choices, f"{page.name} names `vitrine {name}`, which does not exist"
        for line in code_lines(page):
            if not line.startswith("vitrine "):
                continue
            try:
                parser.parse_args(shlex.split(line.split(" > ")[0])[1:])
            except SystemExit:
                raise AssertionError(f"{page.name}: `{line}` is not a valid vitrine command")

"""docs/decisions.md, "Package layout": a package imports only the packages its row names (an
`ast` scan of every module; imports under `if TYPE_CHECKING:` are annotations, not imports)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECISIONS = ROOT / "docs" / "decisions.md"


def layout() -> dict[str, set[str]]:
    """The table's rows: package -> the packages it may import (`everything above` expands)."""
    rows: dict[str, set[str]] = {}
    for line in DECISIONS.read_text().split("## Package layout", 1)[1].splitlines():
        found = re.match(r"\| `(\w+)/` \|.*\| ([^|]+) \|$", line)
        if not found:
            continue
        allowed = set(re.findall(r"`(\w+)`", found.group(2)))
        if "everything above" in found.group(2):
            allowed |= set(rows)
        rows[found.group(1)] = allowed
    return rows


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test) if test else False


def imported(tree: ast.AST) -> set[str]:
    """Top-level package names a module imports at run time."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking(node):
            stack.extend(node.orelse)  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        stack.extend(ast.iter_child_nodes(node))
    return names


def test_the_table_names_every_package_of_ours():
    rows = layout()
    assert {"core", "fleet", "shop", "worker", "web", "reconciler", "ops", "sandbox"} <= set(rows)
    assert rows["core"] == set() and rows["sandbox"] == set()


def test_every_import_follows_the_package_layout_table():
    rows = layout()
    wrong = []
    for package, allowed in rows.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            ours = imported(ast.parse(path.read_text())) & set(rows)
            for name in sorted(ours - allowed - {package}):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports the decisions.md table does not allow:\n" + "\n".join(wrong)

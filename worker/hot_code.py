"""Pack the code objects an idle worker executes onto few pages, in the zygote, before the fork.

Python 3.11 writes to a code object every time it runs it: the frame takes a reference (the
reference count is in the object's first bytes) and the adaptive interpreter rewrites the
bytecode it keeps inline while it warms up. After a fork each write copies the whole 4 kB page
the object sits on, and the ~1,300 code objects a worker runs are spread over ~850 pages of
the zygote's heap among objects nobody touches. Copies of them made one after the other (with
`code.replace()`) sit side by side on ~140 pages, so the same writes copy far fewer pages.

Which code objects: `worker/hot_code.txt`, one `file<TAB>first line<TAB>qualified name` per
line, written by `bench/worker_pages.py --profile-code` (a worker run under `sys.setprofile`).
A stale list costs only memory (the code objects it misses are not moved), never behaviour: a
copy is the same code, and functions are pointed at their copy through `__code__`.
"""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterable
from pathlib import Path

HOT_CODE_FILE = Path(__file__).with_name("hot_code.txt")

Key = tuple[str, int, str]


def code_key(code: types.CodeType) -> Key:
    """(file relative to its package root, first line, qualified name): stable across runs
    and machines (site-packages, the repository and the standard library move)."""
    return (_short_path(code.co_filename), code.co_firstlineno, code.co_qualname)


def _short_path(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.rsplit(marker, 1)[1]
    root = str(Path(__file__).resolve().parents[1]) + "/"
    return filename[len(root) :] if filename.startswith(root) else filename


def read_keys(path: Path = HOT_CODE_FILE) -> set[Key]:
    """The keys listed in `path` (empty when the file is missing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return set()
    found: set[Key] = set()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit():
            found.add((parts[0], int(parts[1]), parts[2]))
    return found


def write_keys(codes: Iterable[types.CodeType], path: Path = HOT_CODE_FILE) -> int:
    """Write the keys of `codes` to `path` (sorted, one per line); returns how many."""
    keys = sorted({code_key(c) for c in codes})
    body = "".join(f"{f}\t{line}\t{name}\n" for f, line, name in keys)
    path.write_text(body, encoding="utf-8")
    return len(keys)


def pack(hot: set[Key]) -> int:
    """Give every function whose code (or a code nested in it) is in `hot` a fresh copy of that
    code, the copies allocated one after the other; returns how many code objects were copied."""
    if not hot:
        return 0
    copies: dict[int, types.CodeType] = {}
    functions = [o for o in gc.get_objects() if isinstance(o, types.FunctionType)]
    for func in functions:
        _copy(func.__code__, hot, copies)
    for func in functions:
        new = copies.get(id(func.__code__))
        if new is not None and new is not func.__code__:
            func.__code__ = new
    return sum(1 for old_id, new in copies.items() if id(new) != old_id)


def _copy(code: types.CodeType, hot: set[Key], copies: dict[int, types.CodeType]) -> types.CodeType:
    """The packed copy of `code` (itself when neither it nor a nested code is hot)."""
    done = copies.get(id(code))
    if done is not None:
        return done
    copies[id(code)] = code  # a code object cannot contain itself, but be safe
    consts = tuple(
        _copy(c, hot, copies) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    changed = any(a is not b for a, b in zip(consts, code.co_consts, strict=True))
    if changed or code_key(code) in hot:
        new = code.replace(co_consts=consts)
        copies[id(code)] = new
        return new
    return code


def profile_calls() -> dict[int, types.CodeType]:
    """Record every code object this process (all its threads) calls from now on; the dict
    fills as it runs. For `bench/worker_pages.py --profile-code` only."""
    import threading

    seen: dict[int, types.CodeType] = {}

    def hook(frame: types.FrameType, event: str, _arg: object) -> None:
        if event == "call":
            seen[id(frame.f_code)] = frame.f_code

    threading.setprofile(hook)
    sys.setprofile(hook)
    return seen

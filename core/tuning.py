"""Tuning knobs: the optional environment variables read outside `load_settings`.

`VITRINE_*` periods, policies and paces, `LOG_DIR` before the settings exist, the
`ORCHESTRATOR_NODE` name: each is read through one of these parsers, so a bad value raises
`TuningError` naming the variable and a good value, and the process exits with
`ExitCode.CONFIG` (78), as for every other setting. Unset or blank means the default. The
module imports nothing heavy: the worker zygote imports it once for every worker.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from core.errors import ConfigError

Environ = Mapping[str, str]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class TuningError(ConfigError, ValueError):
    """A tuning knob is malformed or out of range (a `ValueError` too, as its parsers always
    raised)."""


def _raw(name: str, environ: Environ | None) -> str | None:
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def _example(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def tuning_float(
    name: str, default: float, lo: float, hi: float, environ: Environ | None = None
) -> float:
    """A number in lo..hi (seconds, rates, fractions); `default` when unset."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TuningError(name, f"{raw!r} is not a number", _example(default)) from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise TuningError(
            name, f"{raw} is outside {_example(lo)}..{_example(hi)}", _example(default)
        )
    return value


def tuning_int(name: str, default: int, lo: int, hi: int, environ: Environ | None = None) -> int:
    """A whole number in lo..hi (counts, ports); `default` when unset."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    if len(raw) > 20:
        raise TuningError(name, "is too long", str(default))
    try:
        value = int(raw)
    except ValueError:
        raise TuningError(name, f"{raw!r} is not a whole number", str(default)) from None
    if not lo <= value <= hi:
        raise TuningError(name, f"{value} is outside {lo}..{hi}", str(default))
    return value


def tuning_name(name: str, default: str, environ: Environ | None = None) -> str:
    """A short name (letters, digits, `.`, `_`, `-`; at most 100), e.g. a node name."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    if not _NAME.fullmatch(raw):
        raise TuningError(
            name,
            f"{raw[:40]!r} is not a name of letters, digits, '.', '_', '-' (at most 100)",
            "node-1",
        )
    return raw


def tuning_path(name: str, default: str, environ: Environ | None = None) -> Path:
    """A file-system path (e.g. `LOG_DIR` before the settings are loaded)."""
    raw = _raw(name, environ)
    if raw is None:
        return Path(default)
    if "\0" in raw or len(raw) > 4096:
        raise TuningError(name, "is not a usable path", default)
    return Path(raw)


def tuning_list(name: str, pattern: str, example: str, environ: Environ | None = None) -> list[str]:
    """Comma-separated items, each matching `pattern` (e.g. dotted module names)."""
    raw = _raw(name, environ)
    if raw is None:
        return []
    if len(raw) > 4000:
        raise TuningError(name, "is too long", example)
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for item in items:
        if not re.fullmatch(pattern, item):
            raise TuningError(name, f"{item[:40]!r} is not allowed here", example)
    return items

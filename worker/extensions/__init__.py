"""The worker's extension point: storefront features plug in here, lifecycle code stays put.

An extension is a module with a disnake-style `setup(bot: WorkerBot) -> None` that adds cogs,
slash commands and listeners, and may call `bot.add_background_task(...)` for work that runs
after READY and is cancelled on shutdown (e.g. the delivery-stream consumer). It may declare
`INTENTS = ("guild_messages", ...)`: the worker asks Discord for the union of them (minimal
intents otherwise), and a `check_tuning(environ)` that parses its `VITRINE_*` knobs at the
worker's start. Modules listed here are imported by the zygote before it forks, so their
import cost is paid once, not per bot.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping

import disnake

from core.tuning import tuning_list

BUILTIN: list[str] = [
    "worker.extensions.status",
    "worker.extensions.storefront",
]
ENV_EXTRA = "VITRINE_WORKER_EXTENSIONS"  # comma-separated extra modules (tests, plugins)
_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"  # a dotted module name
BASE_INTENTS = ("guilds",)  # what the lifecycle itself needs


def register(module: str) -> None:
    """Add an extension module for every worker (call at import time of a plugin package)."""
    if module not in BUILTIN:
        BUILTIN.append(module)


def enabled(environ: Mapping[str, str]) -> list[str]:
    """Built-in extensions plus those named in VITRINE_WORKER_EXTENSIONS, in order."""
    extra = [m.strip() for m in environ.get(ENV_EXTRA, "").split(",") if m.strip()]
    return list(dict.fromkeys([*BUILTIN, *extra]))


def check_tuning(environ: Mapping[str, str]) -> None:
    """Parse VITRINE_WORKER_EXTENSIONS and each enabled extension's tuning knobs (its optional
    `check_tuning(environ)`); `TuningError` names a bad one. An extension that fails to import
    is left to `build_bot`, which reports it as the worker's last error."""
    tuning_list(ENV_EXTRA, _MODULE, "my_plugin.commands,other.ext", environ)
    for name in enabled(environ):
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - reported where the bot is built
            continue
        check = getattr(module, "check_tuning", None)
        if check is not None:
            check(environ)


def required_intents(modules: Iterable[str]) -> disnake.Intents:
    """Minimal intents: the lifecycle's plus what each extension declares in INTENTS."""
    intents = disnake.Intents.none()
    for name in modules:
        for flag in (*BASE_INTENTS, *getattr(importlib.import_module(name), "INTENTS", ())):
            setattr(intents, flag, True)
    return intents


PRIVILEGED = {
    "members": "Server Members Intent",
    "presences": "Presence Intent",
    "message_content": "Message Content Intent",
}


def privileged_names(intents: disnake.Intents) -> list[str]:
    """Developer Portal names of the privileged intents in `intents`."""
    return [label for flag, label in PRIVILEGED.items() if getattr(intents, flag)]

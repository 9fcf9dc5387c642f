"""User-facing text: Brazilian Portuguese by default, English second.

Catalogs are flat `key -> text` JSON with `{name}` placeholders: `core/locale/<locale>.json`
plus one fragment per area in `core/locale/<locale>/*.json` (portal, admin, storefront...).
A key may be defined in one file only.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DEFAULT_LOCALE = "pt-BR"
SUPPORTED = ("pt-BR", "en")
_DIR = Path(__file__).resolve().parent / "locale"


def normalize_locale(locale: str | None) -> str:
    """Map Discord/browser locales ('en-US', 'pt-BR', 'en') to a supported catalog."""
    if not locale:
        return DEFAULT_LOCALE
    lowered = locale.lower()
    if lowered.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def catalog_files(locale: str) -> list[Path]:
    return [_DIR / f"{locale}.json", *sorted((_DIR / locale).glob("*.json"))]


@cache
def _catalog(locale: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalog_files(locale):
        if path.exists():
            merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def t(key: str, locale: str | None = None, **params: object) -> str:
    """Translate `key`; falls back to pt-BR, then to the key itself (so a gap is visible)."""
    loc = normalize_locale(locale)
    text = _catalog(loc).get(key) or _catalog(DEFAULT_LOCALE).get(key) or key
    return text.format(**params) if params else text


def format_brl(cents: int) -> str:
    """Centavos as Brazilian reais: 123456 -> 'R$ 1.234,56' (whatever the UI language)."""
    sign = "-" if cents < 0 else ""
    reais, cent = divmod(abs(int(cents)), 100)
    grouped = f"{reais:,}".replace(",", ".")
    return f"{sign}R$ {grouped},{cent:02d}"

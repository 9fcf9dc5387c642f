from hypothesis import given
from hypothesis import strategies as st

from core.i18n import format_brl, normalize_locale, t


def test_brl_format():
    assert format_brl(0) == "R$ 0,00"
    assert format_brl(5) == "R$ 0,05"
    assert format_brl(123456) == "R$ 1.234,56"
    assert format_brl(100000000) == "R$ 1.000.000,00"
    assert format_brl(-1999) == "-R$ 19,99"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_brl_format_round_trips_to_the_same_centavos(cents):
    text = format_brl(cents)
    digits = text.replace("R$ ", "").replace(".", "").replace(",", "")
    assert int(digits) == cents


def test_portuguese_by_default_english_on_request():
    assert normalize_locale(None) == "pt-BR"
    assert normalize_locale("en-US") == "en"
    assert normalize_locale("es-ES") == "pt-BR"
    assert t("runtime.error.invalid_token").startswith("Token inválido")
    assert t("runtime.error.invalid_token", "en-GB").startswith("Invalid token")
    assert "GUILD_MEMBERS" in t("runtime.error.disallowed_intents", intents="GUILD_MEMBERS")


def _keys(locale):
    import json

    from core.i18n import catalog_files

    seen: dict[str, str] = {}
    for path in catalog_files(locale):
        if path.exists():
            for key in json.loads(path.read_text(encoding="utf-8")):
                assert key not in seen, f"{key} defined in {seen.get(key)} and {path.name}"
                seen[key] = path.name
    return set(seen)


def test_every_key_exists_in_both_catalogs_exactly_once():
    pt, en = _keys("pt-BR"), _keys("en")
    assert pt - en == set(), "missing in English"
    assert en - pt == set(), "missing in Portuguese"

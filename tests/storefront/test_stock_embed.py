"""/estoque of a large store still fits in one Discord embed (4096 characters)."""

from core.i18n import t
from worker.extensions.storefront.staff import fit_lines


def test_a_long_stock_list_is_cut_at_whole_lines_and_says_how_many_are_missing():
    lines = [
        t(
            "storefront.stock.line",
            "pt-BR",
            product=f"Produto {n}",
            variation="1 mês",
            available=n,
            reserved=0,
            sold=3,
        )
        for n in range(200)
    ]
    text = fit_lines(lines, "pt-BR")
    assert len(text) <= 4096
    shown = text.split("\n")[:-1]
    assert shown == lines[: len(shown)] and 20 < len(shown) < 200
    assert text.split("\n")[-1] == t("storefront.stock.more", "pt-BR", count=200 - len(shown))


def test_a_short_list_is_shown_whole():
    lines = ["a", "b", "c"]
    assert fit_lines(lines, "en") == "a\nb\nc"
    assert fit_lines([], "en") == ""

"""The PIX end-to-end id a completed withdrawal keeps as proof (`shop.pix_proof`)."""

from __future__ import annotations

import pytest

from shop.pix_proof import InvalidEndToEndId, parse_e2e_id


@pytest.mark.parametrize(
    "value",
    ["E18236120202611301455s0123456789", " E00000000202402292359ABCDEFGHIJK "],
)
def test_pix_e2e_id_accepts_banco_central_format(value):
    assert parse_e2e_id(value) == value.strip()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("E1823612020261130145", "32 characters"),  # too short
        ("D18236120202611301455s0123456789", "32 characters"),  # D is a refund id, not E
        ("E18236120202613301455s0123456789", "not a date"),  # month 13
        ("E18236120202302291200s0123456789", "not a date"),  # 2023 is not a leap year
        ("E18236120202611301455s012345678!", "32 characters"),
        ("E" + "1" * 5000, "32 characters"),  # refused on length before any matching
        (None, "text"),
    ],
)
def test_pix_e2e_id_refuses_what_is_not_one(value, why):
    with pytest.raises(InvalidEndToEndId, match=why):
        parse_e2e_id(value)

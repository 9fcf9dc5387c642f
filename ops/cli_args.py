"""argparse types for what an operator types on the `vitrine` command line: ids, list limits
and timeouts, each bounded and checked (through `shop.inputs`) before any request is made."""

from __future__ import annotations

import argparse

from shop import inputs

LIST_LIMIT_MAX = 500  # the admin API answers at most this many rows


def id_arg(text: str) -> int:
    """argparse type: a database id (1..2**31-1, digits only), checked before any request."""
    try:
        return inputs.parse_id(text)
    except inputs.InvalidInput as refusal:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: {refusal.message('en')}") from None


def limit_arg(text: str) -> int:
    """argparse type: how many rows to list (1..500, the admin API's page limit)."""
    try:
        return inputs.parse_quantity(text, lo=1, hi=LIST_LIMIT_MAX)
    except inputs.InvalidInput as refusal:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: {refusal.message('en')}") from None


def seconds_arg(text: str) -> float:
    """argparse type: a timeout in seconds, 0.01..3600 ('30', '2.5'; no 'nan', 'inf' or '1e9')."""
    try:
        return inputs.parse_money(text, min_cents=1, max_cents=3600_00) / 100
    except inputs.InvalidInput as refusal:
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: {refusal.message('en')}") from None

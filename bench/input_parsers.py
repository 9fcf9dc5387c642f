"""Bench: the worst time any typed text costs the bounded number parsers (issue 13).

    .venv/bin/python bench/input_parsers.py [--random 20000] [--seed 13] [--repeat 200]

Feeds each parser of `shop.inputs` (money, percent, quantity, id) and `shop.cents.reais_to_cents`
(Mercado Pago's amounts) the worst inputs we could construct — exponents ('1e999999999'),
10,000-digit numbers, thousands of separators, unicode digits, padding just under and over the
length bound — each `--repeat` times, then `--random` random texts of up to 10,000 characters.
Prints, per parser, the number of calls, the max, p99 and p50 time per call, the median time
of the costliest single input (the max is mostly the scheduler on a shared machine), and the
share refused. In-process, CPU only; a few seconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop import inputs  # noqa: E402
from shop.cents import reais_to_cents  # noqa: E402

PARSERS: dict[str, Callable[[str], int]] = {
    "parse_money": lambda s: inputs.parse_money(s),
    "parse_percent": lambda s: inputs.parse_percent(s),
    "parse_quantity": lambda s: inputs.parse_quantity(s, hi=100),
    "parse_id": lambda s: inputs.parse_id(s),
    "reais_to_cents": reais_to_cents,
}
REFUSALS = (inputs.InvalidInput, ValueError)
ALPHABET = "0123456789" * 4 + "eE,.+-_ R$\u00a0١٢٣²½\x00x"


def worst_inputs() -> list[str]:
    edge = inputs.MAX_TEXT
    return [
        "1e999990",
        "1e999999999",
        "-1e999999999",
        "1E+999999999",
        "9" * 10_000,
        "1" + "0" * 9_999,
        "1." + "0" * 9_998,
        "0," + "9" * 9_998,
        "1.000" * 2_000,
        ",".join(["1"] * 5_000),
        "R$ " * 3_333,
        " " * 10_000,
        "١" * 10_000,
        "²" * 10_000,
        "9" * edge,
        "9" * (edge + 1),
        " " * (edge - 2) + "10",
        "1.234.567.890,12",
        "NaN",
        "Infinity",
        "-0",
        "0" * edge,
        "1_000_000",
        "\x00" * 10_000,
        "1e9" * 3_333,
        "9" * 4_300,
        "9" * 4_301,
    ]


def time_calls(
    parser: Callable[[str], int], texts: list[str], repeat: int
) -> tuple[list[float], float, int]:
    """All call times, the costliest input's median time (scheduler noise removed), refusals."""
    times: list[float] = []
    costliest = 0.0
    refused = 0
    for text in texts:
        mine: list[float] = []
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                parser(text)
            except REFUSALS:
                refused += 1
            mine.append(time.perf_counter() - start)
        times += mine
        costliest = max(costliest, statistics.median(mine))
    return times, costliest, refused


def report(name: str, times: list[float], costliest: float, refused: int) -> str:
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"{name:<15} {len(times):>7} calls  max {max(times) * 1e6:7.1f} µs  "
        f"p99 {p99 * 1e6:5.1f} µs  p50 {statistics.median(times) * 1e6:4.1f} µs  "
        f"costliest input (median) {costliest * 1e6:5.1f} µs  "
        f"refused {refused / len(times):6.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=20_000, help="random texts per parser")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--repeat", type=int, default=200, help="runs of each worst input")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    randoms = [
        "".join(rng.choices(ALPHABET, k=rng.randint(0, 10_000 if i % 10 == 0 else 60)))
        for i in range(args.random)
    ]
    worst = worst_inputs()
    print(
        f"Python {sys.version.split()[0]}; worst inputs x{args.repeat}, "
        f"{args.random} random texts x3 (1 in 10 up to 10,000 chars)"
    )
    for label, texts, repeat in (("worst", worst, args.repeat), ("random", randoms, 3)):
        print(f"-- {label}")
        for name, parse in PARSERS.items():
            times, costliest, refused = time_calls(parse, texts, repeat)
            print(report(name, times, costliest, refused))


if __name__ == "__main__":
    main()

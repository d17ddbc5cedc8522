"""Small statistics shared by `opro baselines` and `opro compare`: mean ± standard error, seed lists."""

from __future__ import annotations

import math
from collections.abc import Iterable

from opro.errors import OproError


def mean_se(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, standard error of the mean, count) over the finite values; nan where undefined.

    The standard error is the sample standard deviation (ddof=1) over sqrt(count), as the paper reports
    its Table 3 columns; with one value it is nan.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan, 0
    mean = sum(xs) / len(xs)
    if len(xs) == 1:
        return mean, math.nan, 1
    variance = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(variance / len(xs)), len(xs)


def format_mean_se(values: Iterable[float | None], digits: int = 1) -> str:
    """'13.0 ± 1.3', '13.0' for one value, '-' for none."""
    mean, se, count = mean_se(values)
    if count == 0:
        return "-"
    if count == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def parse_seeds(text: str) -> list[int]:
    """`0-4` -> [0, 1, 2, 3, 4]; `1,3,7` -> [1, 3, 7]; ranges and single seeds may be mixed. At most
    MAX_REPEATS seeds, each in [0, MAX_SEED]."""
    from opro.settings import MAX_REPEATS, MAX_SEED

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-") if not part.startswith("-") else ("", "", "")
        try:
            if dash:
                first, last = int(low), int(high)
                if last < first:
                    raise ValueError
                if len(seeds) + last - first + 1 > MAX_REPEATS:
                    raise OproError(f"seed list {text!r} has more than {MAX_REPEATS} seeds")
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise OproError(f"bad seed list {text!r}; expected e.g. 0-4 or 0,2,5") from None
        if len(seeds) > MAX_REPEATS:
            raise OproError(f"seed list {text!r} has more than {MAX_REPEATS} seeds")
    if seeds and not 0 <= min(seeds) <= max(seeds) <= MAX_SEED:
        raise OproError(f"seeds must be in [0, {MAX_SEED}], got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise OproError(f"seed list {text!r} repeats a seed")
    return seeds


def mcnemar_exact(first: Iterable[bool], second: Iterable[bool]) -> tuple[int, int, float]:
    """Exact McNemar test of two paired right/wrong lists (the same questions, in the same order):
    (questions only the first got right, questions only the second got right, two-sided p-value). Under the
    null the discordant questions split as a fair coin; p = min(1, 2 P[Binomial(b + c, 1/2) <= min(b, c)])."""
    pairs = list(zip(first, second, strict=True))
    only_first = sum(1 for a, b in pairs if a and not b)
    only_second = sum(1 for a, b in pairs if b and not a)
    n = only_first + only_second
    if n == 0:
        return 0, 0, 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_first, only_second) + 1)) / 2**n
    return only_first, only_second, min(1.0, 2 * tail)

"""Token prices, in USD per 1M tokens, to turn usage into a cost estimate.

The defaults are OpenAI's list prices for standard (non-batch, uncached) input and output tokens as of
2025-08 (https://openai.com/api/pricing). Prices change: treat a cost as an estimate, and override or
extend the table with a TOML file named by `$OPRO_PRICES` or passed as `path`:

    ["gpt-4o"]
    input = 2.5      # USD per 1M prompt tokens
    output = 10.0    # USD per 1M completion tokens

Local backends (`llamacpp:`, `hf:`) cost 0. A model missing from the table has an unknown cost (None).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from opro.errors import OproError

PRICES_AS_OF = "2025-08"
LOCAL_BACKENDS = ("llamacpp", "hf")


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input: float
    """Per 1M prompt tokens."""
    output: float
    """Per 1M completion tokens."""


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.0),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4": Price(30.0, 60.0),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o1": Price(15.0, 60.0),
    "o3": Price(2.0, 8.0),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
}

# Dated snapshots cost what their alias costs: gpt-4o-2024-08-06 -> gpt-4o, gpt-3.5-turbo-0125 -> gpt-3.5-turbo.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """The default table with the TOML file at `path` (else `$OPRO_PRICES`, if set) merged over it."""
    prices = dict(DEFAULT_PRICES)
    path = path or os.environ.get("OPRO_PRICES")
    if not path:
        return prices
    try:
        table = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not TOML
        raise OproError(f"cannot read price table {path}: {error}") from None
    for model, entry in table.items():
        values = [entry.get(k) for k in ("input", "output")] if isinstance(entry, dict) else [None]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < float("inf") for v in values):
            raise OproError(f"price table {path}: [{model}] needs numbers `input` and `output` (USD per 1M tokens, "
                            ">= 0)")
        prices[model] = Price(float(values[0]), float(values[1]))
    return prices


def price_of(spec_or_model: str, prices: dict[str, Price] | None = None) -> Price | None:
    """The price of `openai:gpt-4o`, `gpt-4o` or a dated snapshot of it; 0 for local backends; else None.
    `prices` defaults to `load_prices()` (the defaults, plus `$OPRO_PRICES`)."""
    backend, _, model = spec_or_model.partition(":")
    if backend in LOCAL_BACKENDS:
        return Price(0.0, 0.0)
    if backend != "openai":
        model = spec_or_model
    prices = load_prices() if prices is None else prices
    return prices.get(model) or prices.get(_SNAPSHOT.sub("", model))


def cost(spec_or_model: str, prompt_tokens: int, completion_tokens: int,
         prices: dict[str, Price] | None = None) -> float | None:
    """Estimated USD for this usage, or None when the model's price is unknown."""
    price = price_of(spec_or_model, prices)
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6

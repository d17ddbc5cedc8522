"""The step metrics a tracker logs, read from the run directory (the record) as each step completes."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

#: steps.csv columns that are not logged as they are; every other numeric cell is (best_so_far, n_valid, tokens,
#: cost_usd, seconds, and a problem's own columns such as scorer_calls and validation_mean).
SKIPPED = ("step", "n_resampled", "n_cached", "optimal")


class StepMetrics:
    """The metrics of each step written to a run directory since the last `read`, one dict per step.

    Each holds the steps.csv numbers (best_so_far, tokens, cost_usd, scorer_calls, validation accuracy where
    recorded), and what a tracker's chart needs besides: `step_mean` (mean score of the step's valid
    proposals, from candidates.csv), `valid_rate` (n_valid / n_candidates), `tokens` (prompt + completion),
    `tokens_total` and `cost_total` (the run's so far) and `optimal` (1 once the known optimum is reached).
    Only complete steps are read (the byte lengths in state.json). `from_start` reads the steps already
    written too (a tracker run that is new for a resumed run); otherwise reading starts after them.
    """

    def __init__(self, path: Path, from_start: bool) -> None:
        self.path = path
        self.tokens_total, self.cost_total = 0, 0.0
        self.offsets = {"steps.csv": _header_length(path / "steps.csv"),
                        "candidates.csv": _header_length(path / "candidates.csv")}
        self.headers = {name: _header(path / name) for name in self.offsets}
        if not from_start:
            self.read()  # the totals so far; these steps were logged before

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """(step, metrics) of every step completed since the last call."""
        lengths = json.loads((self.path / "state.json").read_text())["lengths"]
        steps = self._rows("steps.csv", lengths["steps.csv"])
        scores: dict[int, list[float]] = {}
        for row in self._rows("candidates.csv", lengths["candidates.csv"]):
            if row.get("valid") == "True" and row.get("score"):
                scores.setdefault(int(row["step"]), []).append(float(row["score"]))
        out = []
        for row in steps:
            metrics = {name: float(value) for name, value in row.items()
                       if name not in SKIPPED and _number(value) is not None}
            tokens = int(row["prompt_tokens"]) + int(row["completion_tokens"])
            self.tokens_total += tokens
            self.cost_total += float(row["cost_usd"]) if row["cost_usd"] else 0.0
            step_scores = scores.get(int(row["step"]), [])
            metrics.update(tokens=tokens, tokens_total=self.tokens_total, optimal=float(row["optimal"] == "True"),
                           valid_rate=int(row["n_valid"]) / int(row["n_candidates"]) if int(row["n_candidates"])
                           else 0.0)
            if row["cost_usd"]:
                metrics["cost_total"] = self.cost_total
            if step_scores:
                metrics["step_mean"] = sum(step_scores) / len(step_scores)
            out.append((int(row["step"]), metrics))
        return out

    def _rows(self, name: str, length: int) -> list[dict[str, str]]:
        start = self.offsets[name]
        if length <= start:
            return []
        with open(self.path / name, "rb") as handle:
            handle.seek(start)
            text = handle.read(length - start).decode("utf-8")
        self.offsets[name] = length
        return [dict(zip(self.headers[name], row, strict=False))
                for row in csv.reader(io.StringIO(text, newline=""))]


def _header(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        return next(csv.reader([handle.readline().decode("utf-8")]), [])


def _header_length(path: Path) -> int:
    with open(path, "rb") as handle:
        return len(handle.readline())


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

"""`opro eval`: the accuracy of given instructions (the paper's baselines, a run's best) on a split.

Writes `eval.csv` and `eval.json` (one row per instruction) and `instructions/<id>.csv` (per-example
results) into the output folder. Scores go through the same score cache as optimization runs, so an
instruction already evaluated with the same scorer, position and examples costs no scorer calls.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.prompting.scoring import accuracy, instruction_id, truncated_rate, write_results_csv
from opro.redact import redact_data

#: The baseline instructions of the paper's Table 1/4 (GSM8K, BBH), for `opro eval --baselines`.
PAPER_BASELINES = ("", "Let's think step by step.", "Let's solve the problem.",
                   "Take a deep breath and work on this problem step-by-step.")


@dataclass
class EvalRow:
    """One instruction evaluated on one split (a row of eval.csv)."""

    source: str
    """Where the instruction came from: "given", "baseline", or "run:<run dir>"."""
    instruction: str
    instruction_id: str
    """First 16 hex digits of its sha256: the per-example file instructions/<id>.csv."""
    dataset: str
    split: str
    n: int
    """Examples evaluated."""
    correct: int
    accuracy: float
    """Percent correct, 0-100."""
    truncated_rate: float
    """Share (0-1) of the answers cut at problem.scorer_max_tokens (finish_reason "length" in the
    per-example file)."""
    scorer_calls: int
    """Requests sent to the scorer (the rest came from the score cache)."""
    seconds: float


EVAL_COLUMNS = [f.name for f in fields(EvalRow)]


def evaluate_instructions(problem: Any, instructions: list[tuple[str, str]], split: str, limit: int | None,
                          out: Path, scorer: Any = None) -> list[EvalRow]:
    """Score each (source, instruction) on the first `limit` examples of `split`; write the result files
    (eval.json records `scorer`, the scorer's settings, when given)."""
    examples = problem.examples(split)
    if limit is not None:
        if limit < 1:
            raise OproError(f"--limit must be >= 1, got {limit}")
        examples = examples[:limit]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for source, instruction in instructions:
        calls, started = problem.scorer.calls, time.perf_counter()
        results = problem.evaluate(instruction, examples)
        ident = instruction_id(instruction)
        write_results_csv(out / "instructions" / f"{ident}.csv", results)
        rows.append(EvalRow(source, instruction, ident, problem.name, split, len(results),
                            sum(r.correct for r in results), accuracy(results), truncated_rate(results),
                            problem.scorer.calls - calls,
                            round(time.perf_counter() - started, 3)))
        with open(out / "eval.csv", "w", newline="") as handle:  # rewritten after each instruction
            writer = csv.writer(handle)
            writer.writerow(EVAL_COLUMNS)
            writer.writerows(redact_data([getattr(r, c) for c in EVAL_COLUMNS]) for r in rows)
    (out / "eval.json").write_text(json.dumps(redact_data({
        "split": split, "limit": limit, "n_examples": len(examples), "problem": problem.describe(),
        **({"scorer": asdict(scorer)} if scorer is not None else {}),
        "results": [asdict(r) for r in rows]}), indent=2, default=str))
    return rows


def format_rows(rows: list[EvalRow]) -> str:
    """A plain table: accuracy, examples, scorer calls, seconds, instruction."""
    lines = [f"{'accuracy':>8}  {'n':>5}  {'calls':>5}  {'seconds':>8}  instruction"]
    for r in rows:
        shown = repr(r.instruction) if r.instruction else '"" (empty)'
        lines.append(f"{r.accuracy:7.1f}%  {r.n:>5}  {r.scorer_calls:>5}  {r.seconds:>8.1f}  {shown}  [{r.source}]")
    return "\n".join(lines)

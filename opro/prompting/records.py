"""A prompt run's own files in its run directory, and reading them back on resume.

- instructions.csv: one row per scored instruction (`INSTRUCTION_COLUMNS`, plus `VALIDATION_COLUMN` when the
  run validates during the run); its scorer usage is the training score's alone.
- instructions/<id>.csv: the instruction's per-example results (opro.prompting.scoring.write_results_csv).
- few_shot.csv (`FEW_SHOT_COLUMNS`): instructions scored on a step's meta-prompt exemplars.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from opro.prompting.scoring import ExampleResult, accuracy, instruction_id, truncated_rate, write_results_csv
from opro.redact import redact_data

INSTRUCTION_COLUMNS = ["step", "instruction_id", "instruction", "score", "n_scored", "full", "screened_out",
                       "scorer_calls", "scorer_prompt_tokens", "scorer_completion_tokens", "truncated_rate"]
#: instructions.csv's last column when problem.eval_interval > 0 (older runs' files lack it).
VALIDATION_COLUMN = "validation_score"
#: few_shot.csv (evaluate_generated_ins_on_few_shot / evaluate_old_ins_on_few_shot): one row per instruction
#: scored on a step's meta-prompt exemplars; `kind` is "generated" or "old".
FEW_SHOT_COLUMNS = ["step", "instruction_id", "kind", "n", "correct", "score"]


@dataclass
class Resumed:
    """What a resumed run's instructions.csv gives back (empty for a new run)."""

    correct: dict[str, tuple[bool, ...]] = field(default_factory=dict)
    """Fully scored instructions: per training example, answered right (from instructions/<id>.csv)."""
    full_scores: dict[str, float] = field(default_factory=dict)
    """Fully scored instructions: training accuracy, percent."""
    validation_scores: dict[str, float] = field(default_factory=dict)
    """Instructions scored on the validation split: accuracy, percent."""


@dataclass
class InstructionRecords:
    """The prompt run's files under `path`; `columns` are instructions.csv's, as the run first wrote them."""

    path: Path
    columns: list[str]

    @classmethod
    def attach(cls, path: Path, validation: bool, few_shot: bool,
               last_step: int | None = None) -> tuple[InstructionRecords, Resumed]:
        """Start the files at `path` (headers only), or read a resumed run's back. `validation`: this run writes
        VALIDATION_COLUMN; `few_shot`: it writes few_shot.csv. Given `last_step` (a resumed run's last completed
        step), its rows of later steps and a row cut short by a kill are dropped first: that step is run again,
        as its candidates are (RunDir.restore), so no row is counted twice or merged into the next one."""
        records = cls(path, INSTRUCTION_COLUMNS + ([VALIDATION_COLUMN] if validation else []))
        resumed = Resumed()
        index = path / "instructions.csv"
        for name in ("instructions.csv", "few_shot.csv"):
            if last_step is not None:
                _keep_completed_steps(path / name, last_step)
        if few_shot and not (path / "few_shot.csv").is_file():
            (path / "few_shot.csv").write_text(",".join(FEW_SHOT_COLUMNS) + "\n")
        if not index.is_file():
            index.write_text(",".join(records.columns) + "\n")
            return records, resumed
        with open(index, newline="") as handle:  # a resumed run: what screening and exemplars need
            reader = csv.DictReader(handle)
            records.columns = list(reader.fieldnames or INSTRUCTION_COLUMNS)  # as the run wrote it
            for row in reader:
                if _number(row.get(VALIDATION_COLUMN)) is not None:
                    resumed.validation_scores[row["instruction"]] = float(row[VALIDATION_COLUMN])
                results = path / "instructions" / f"{row['instruction_id']}.csv"
                if row["full"] == "True" and results.is_file():
                    with open(results, newline="") as outcomes:
                        right = tuple(r["correct"] == "True" for r in csv.DictReader(outcomes))
                    resumed.correct[row["instruction"]] = right
                    resumed.full_scores[row["instruction"]] = float(row["score"])
        return records, resumed

    def record(self, step: int, instruction: str, score: float, results: list[ExampleResult], full: bool,
               usage: tuple[int, ...], validation: float | None = None) -> None:
        """Write the instruction's results file and its instructions.csv row. `usage`: the scorer's calls,
        prompt tokens and completion tokens for this score; `validation`: its validation accuracy, if scored."""
        ident = instruction_id(instruction)
        write_results_csv(self.path / "instructions" / f"{ident}.csv", results)
        values = [step, ident, instruction, repr(score), len(results), full, not full, *usage,
                  truncated_rate(results)]
        row = dict(zip(INSTRUCTION_COLUMNS, values, strict=True))
        row[VALIDATION_COLUMN] = "" if validation is None else repr(validation)
        with open(self.path / "instructions.csv", "a", newline="") as handle:
            csv.writer(handle).writerow(redact_data([row.get(column, "") for column in self.columns]))

    def record_few_shot(self, step: int, instruction: str, kind: str, results: list[ExampleResult]) -> None:
        """Append a few_shot.csv row: `instruction` scored on the step's exemplars; `kind`: generated or old."""
        with open(self.path / "few_shot.csv", "a", newline="") as handle:
            csv.writer(handle).writerow([step, instruction_id(instruction), kind, len(results),
                                         sum(r.correct for r in results), repr(accuracy(results))])

    def truncated_rate(self) -> float | None:
        """Share of the run's scorer answers cut at max_tokens, from instructions.csv (so a resumed run counts
        every step); None for an older run's file without the column, or before a scored instruction."""
        if "truncated_rate" not in self.columns:
            return None
        with open(self.path / "instructions.csv", newline="") as handle:
            rows = [pair for r in csv.DictReader(handle) if (pair := _counted(r)) is not None]
        total = sum(n for n, _ in rows)
        return round(sum(round(n * rate) for n, rate in rows) / total, 6) if total else None


def _number(text: str | None) -> float | None:
    """A CSV cell as a float; None for an empty or unreadable one (a row cut short by a kill)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _counted(row: dict[str, str | None]) -> tuple[int, float] | None:
    """(answers scored, share cut) of an instructions.csv row, or None for a row cut short."""
    n, rate = _number(row.get("n_scored")), _number(row.get("truncated_rate"))
    return None if n is None or rate is None else (int(n), rate)


def _keep_completed_steps(path: Path, last_step: int) -> None:
    """Rewrite the CSV at `path` without its rows of steps after `last_step` and without an unterminated last
    row (cut short by a kill); untouched when there is nothing to drop, or no such file. The header line is
    kept as it is, and the rows kept are written back by the same csv writer that wrote them."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        text = handle.read()
    header, _, body = text.partition("\n")
    rows = list(csv.reader(io.StringIO(body, newline="")))
    if rows and not body.endswith("\n"):
        rows.pop()
    kept = [row for row in rows if row and (step := _number(row[0])) is not None and step <= last_step]
    if len(kept) == len(rows) and (not body or body.endswith("\n")):
        return
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(kept)
    scratch = path.with_name(path.name + ".tmp")
    with open(scratch, "w", encoding="utf-8", newline="") as handle:
        handle.write(header + "\n" + buffer.getvalue())
    scratch.replace(path)

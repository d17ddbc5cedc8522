"""Run directories -> Hugging Face datasets (JSON lines or Parquet) for GRPO, DPO and SFT.

- grpo: one row per step: the exact meta-prompt messages and the episode's scoring context (`Episode`).
- dpo: per step, pairs of the outputs sampled for that meta-prompt, the higher-reward one `chosen`
  (a better score beats a worse one, a valid proposal beats an invalid or duplicate one); ties make no pair.
- sft: per step, the meta-prompt with a solver-made answer that beats every solution shown: the optimum
  (the certified TSP optimum, the exact integer least-squares pair), or with target "neighbor" the best
  unseen neighbour of the best solution shown (`neighbor_step`); steps where none beats it are skipped.
Every row keeps the episode's context columns, so any format can be rewarded again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.rl.episodes import Episode, answer_text, best_seen, neighbor_step, problem_from, run_groups, strong_solution
from opro.rl.rewards import RewardConfig, judge

FORMATS = ("grpo", "dpo", "sft")
#: What an SFT answer is: the optimum, or one steepest-descent step from the best solution shown.
TARGETS = ("optimum", "neighbor")


def grpo_rows(episodes: list[Episode]) -> list[dict[str, Any]]:
    return [e.row() for e in episodes]


def dpo_rows(groups: list[tuple[Episode, list[str]]], max_pairs: int = 4,
             config: RewardConfig | None = None) -> list[dict[str, Any]]:
    """Up to `max_pairs` (chosen, rejected) pairs per meta-prompt: best with worst, second with second-worst..."""
    config = config or RewardConfig()
    rows = []
    for episode, texts in groups:
        ranked = sorted(((judge(episode, t, config).reward, t) for t in dict.fromkeys(texts)), key=lambda p: -p[0])
        for k in range(min(max_pairs, len(ranked) // 2)):
            (good, chosen), (bad, rejected) = ranked[k], ranked[-1 - k]
            if good > bad:
                rows.append({**episode.row(), "chosen": _assistant(chosen), "rejected": _assistant(rejected),
                             "chosen_reward": good, "rejected_reward": bad})
    return rows


def sft_rows(episodes: list[Episode], target: str = "optimum") -> list[dict[str, Any]]:
    """The meta-prompt with a solver-made answer as the `completion` (TRL's prompt-completion format)."""
    return [{**episode.row(), "completion": _assistant(answer_text(problem, solution))}
            for episode, problem, solution in _solver_answers(episodes, target)
            if judge(episode, answer_text(problem, solution)).improved]


def solver_pairs(episodes: list[Episode]) -> list[dict[str, Any]]:
    """DPO pairs without a run: the solver's answer (beats every one shown) over a repeat of the best shown."""
    rows = []
    for episode, problem, target in _solver_answers(episodes):
        chosen, rejected = answer_text(problem, target), answer_text(problem, best_seen(problem, episode))
        if chosen != rejected:
            rows.append({**episode.row(), "chosen": _assistant(chosen), "rejected": _assistant(rejected)})
    return rows


def _solver_answers(episodes: list[Episode], target: str = "optimum") -> Iterator[tuple[Episode, Any, Any]]:
    """(episode, its problem, the solver-made solution) for every episode whose problem has one."""
    if target not in TARGETS:
        raise OproError(f"unknown SFT target {target!r}; known: {', '.join(TARGETS)}")
    for episode in episodes:
        problem = problem_from(episode.problem, episode.settings)
        solution = strong_solution(problem) if target == "optimum" else neighbor_step(problem, episode)
        if solution is not None:
            yield episode, problem, solution


def export_runs(run_dirs: list[Path], fmt: str, out: Path, max_pairs: int = 4) -> int:
    """Write the `fmt` dataset of `run_dirs` to `out` (.jsonl/.json or .parquet); returns the row count."""
    if fmt not in FORMATS:
        raise OproError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    groups = [g for d in run_dirs for g in run_groups(d)]
    episodes = [e for e, _ in groups]
    rows = {"grpo": lambda: grpo_rows(episodes), "dpo": lambda: dpo_rows(groups, max_pairs),
            "sft": lambda: sft_rows(episodes)}[fmt]()
    write_rows(rows, out)
    return len(rows)


def write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """Rows as a datasets file: JSON lines (one object per line) or Parquet, by the suffix of `out`."""
    if not rows:
        raise OproError(f"nothing to export to {out} (no steps with a history, or no usable pairs)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix in (".jsonl", ".json"):
        with out.open("w") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    elif out.suffix == ".parquet":
        from datasets import Dataset
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        Dataset.from_list(rows).to_parquet(str(out))
    else:
        raise OproError(f"--out must end in .jsonl or .parquet, got {out.name}")


def load_rows(path: Path):
    """A written export as a `datasets.Dataset`."""
    from datasets import Dataset

    if not path.is_file():
        raise OproError(f"dataset not found: {path}")
    if path.suffix == ".parquet":
        return Dataset.from_parquet(str(path))
    return Dataset.from_json(str(path))


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]

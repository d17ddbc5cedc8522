"""Scorer calls saved by `--screen` (successive halving) in prompt optimization, for the best train accuracy.

1. A real run without screening (default model as optimizer and scorer, fresh caches, LLM-call cache off, so
   every scorer call is a generation). Its instructions.csv and per-instruction CSVs give the stream of
   instructions in the order they were proposed and each one's right/wrong answer on every training question.
2. Replay: the same stream through the `--screen` rule (opro.prompting.screen's functions, with the
   problem's default stages and rotation),
   counting the scorer calls it would make and the best train accuracy among the instructions it scores fully.
   Same instructions, same answers: the difference is the screening alone.
3. With --live, also a real `--screen` run with the same seed (its trajectory can differ from run 1's,
   because screened-out instructions are shown with their subset score).

    python -m benchmarks.prompt_screening --data ../shared/data            # BBH navigate, 20 train questions
    python -m benchmarks.prompt_screening --data ../shared/data --task gsm8k --live
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from opro.config import build_config
from opro.prompting.screen import calls_without_screening, kth_best, passes_stage, stage_positions
from opro.runner import start_run


def replay(run_path: Path, top_k: int, fraction: float, margin: int, split_seed: int, stages: int = 3,
           rotate: bool = True, z: float = 0.0) -> dict[str, float]:
    """Scorer calls and best accuracy of run 1's instruction stream, with and without the screening rule
    (the problem's defaults: 3 stages, a fresh subset each step; stages=1, rotate=False: the older rule)."""
    index = pd.read_csv(run_path / "instructions.csv", keep_default_na=False)
    outcomes = [pd.read_csv(run_path / "instructions" / f"{i}.csv")["correct"].astype(bool).tolist()
                for i in index["instruction_id"]]
    n_train = len(outcomes[0])
    full: dict[str, float] = {}
    correct: dict[str, list[bool]] = {}
    calls = 0
    for step, instruction, outcome in zip(index["step"], index["instruction"], outcomes, strict=True):
        bar = kth_best(full, top_k)
        asked: set[int] = set()
        passed = True
        for positions in [] if bar is None else stage_positions(n_train, fraction, split_seed, stages,
                                                                 int(step) if rotate else None):
            asked.update(positions)
            if not passes_stage([outcome[i] for i in positions], [correct[bar][i] for i in positions], margin, z):
                passed = False
                break
        calls += n_train if passed else len(asked)
        if passed:
            full[instruction], correct[instruction] = 100.0 * sum(outcome) / n_train, outcome
    return {
        "instructions": len(index), "n_train": n_train,
        "calls_full": calls_without_screening(len(index), n_train), "calls_screen": calls,
        "best_full": max(100.0 * sum(o) / n_train for o in outcomes), "best_screen": max(full.values()),
        "screened_out": len(index) - len(full),
    }


def real_run(task: str, overrides: dict, folder: Path, screen: bool) -> tuple[dict, float]:
    config = build_config(task, {**overrides, "problem.screen": screen, "results_root": str(folder),
                                 "problem.score_cache": str(folder / "scores.sqlite")})
    started = time.perf_counter()
    run, summary = start_run(config, run_id="screen" if screen else "full")
    return {"run": run.path, **summary}, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Local data folder (../shared/data)")
    parser.add_argument("--task", default="bbh", help="gsm8k or bbh")
    parser.add_argument("--bbh-task", default="navigate")
    parser.add_argument("--train", type=int, default=20, help="training questions (problem.train_limit)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--top-k", type=int, default=4, help="loop.top_k = problem.screen_top_k")
    parser.add_argument("--fraction", type=float, default=0.25, help="problem.screen_fraction")
    parser.add_argument("--scorer-max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--live", action="store_true", help="also a real --screen run")
    parser.add_argument("--keep", help="folder for the run directories (default: a temporary one)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    overrides = {
        "seed": args.seed, "problem.data": str(Path(args.data).resolve()), "problem.train_limit": args.train,
        "loop.steps": args.steps, "loop.candidates_per_step": args.candidates, "loop.top_k": args.top_k,
        "problem.screen_top_k": args.top_k, "problem.screen_fraction": args.fraction,
        "problem.scorer_max_tokens": args.scorer_max_tokens, "loop.max_tokens": 48, "loop.stop_at_optimum": False,
        "optimizer.threads": args.threads, "llm.cache": False,
    }
    if args.task == "bbh":
        overrides["problem.bbh_task"] = args.bbh_task
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="opro-screen-"))
    full, full_seconds = real_run(args.task, overrides, folder / "full", screen=False)
    result = replay(full["run"], args.top_k, args.fraction, 0, 0)
    print(f"task {args.task}{'/' + args.bbh_task if args.task == 'bbh' else ''}: {args.train} train questions, "
          f"{args.steps} steps x {args.candidates} proposals, top-k {args.top_k}, subset {args.fraction:.0%}")
    print(f"run without screening: {full['instance']['scorer_calls']} scorer calls, best train accuracy "
          f"{full['best_score']:.1f}%, {full_seconds:.0f} s")
    print(f"replay of its {result['instructions']} instructions: scorer calls {result['calls_full']} -> "
          f"{result['calls_screen']} with --screen (x{result['calls_screen'] / result['calls_full']:.2f}, "
          f"{result['screened_out']} screened out); best train accuracy {result['best_full']:.1f}% -> "
          f"{result['best_screen']:.1f}%")
    if args.live:
        live, live_seconds = real_run(args.task, overrides, folder / "screen", screen=True)
        print(f"real --screen run: {live['instance']['scorer_calls']} scorer calls "
              f"(x{live['instance']['scorer_calls'] / max(1, full['instance']['scorer_calls']):.2f}), "
              f"{live['instance']['n_screened_out']} screened out, best train accuracy {live['best_score']:.1f}%, "
              f"{live_seconds:.0f} s")
    print(f"run directories: {folder}")


if __name__ == "__main__":
    main()

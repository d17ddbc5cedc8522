"""`--screen` at the paper's scale, with a simulated scorer: it measures the screening rule, not a model.

The paper's GSM8K split (3.5% of train: 261 questions), 8 instructions per step, top-k 20, `--steps` steps
(default 200), `--seeds` seeds. The scorer and the optimizer are simulated (benchmarks.simulated_scorer:
seeded per-instruction abilities, per-question difficulties and per-(instruction, question) outcomes), and
plugged in as the problem's scorer, so the real PromptOptimization._score_one and opro.prompting.screen
decide what is scored. Each rule runs on the same seeds as the run without screening (paired: the same
simulated proposals while the shown top-k is the same).

Per rule: scorer calls (with the score cache: one per new (instruction, question) pair), and how many times
fewer than without screening; the best train accuracy (mean ± SE over seeds) and its paired difference; the
false-cut rate: the share of the instructions screening cut that, fully scored, would have entered the top-k
at that step (full accuracy >= the k-th best's; the newer one stays in at equal scores); and the share of
would-be top-k entrants that were cut.

    python -m benchmarks.screen_at_scale --data ../shared/data                 # 200 steps, 5 seeds
    python -m benchmarks.screen_at_scale --data ../shared/data --steps 50 --rules default gepa
"""

from __future__ import annotations

import argparse
import heapq
import time
from pathlib import Path
from statistics import mean, stdev

from benchmarks.simulated_scorer import SimulatedScorer, SimulatedWorld, SimulationSettings
from opro.problems.prompt import PromptOptimization

#: Rule name -> problem settings (screen_*); "none" is the run without screening every rule is paired with.
RULES: dict[str, dict] = {
    "none": {"screen": False},
    "default": {"screen": True},  # 10% subset (26 questions), margin 0
    "subset 5%": {"screen": True, "screen_fraction": 0.05},
    "subset 20%": {"screen": True, "screen_fraction": 0.2},
    "margin 2": {"screen": True, "screen_margin": 2},
    "z 1": {"screen": True, "screen_z": 1.0},
    "z 0.5, subset 5%": {"screen": True, "screen_fraction": 0.05, "screen_z": 0.5},
    "rotate": {"screen": True, "screen_rotate": True},
    "halving 5% x3": {"screen": True, "screen_fraction": 0.05, "screen_stages": 2},
    "halving 3% x3 x3": {"screen": True, "screen_fraction": 0.03, "screen_stages": 3},
    "halving 5% x3, rotate": {"screen": True, "screen_fraction": 0.05, "screen_stages": 2, "screen_rotate": True},
    "rotate, z 0.5": {"screen": True, "screen_rotate": True, "screen_z": 0.5},
    "rotate, z 1": {"screen": True, "screen_rotate": True, "screen_z": 1.0},
    "rotate, subset 20%": {"screen": True, "screen_rotate": True, "screen_fraction": 0.2},
    "rotate, margin 1": {"screen": True, "screen_rotate": True, "screen_margin": 1},
    "halving 10% x3, rotate": {"screen": True, "screen_stages": 2, "screen_rotate": True},
    "halving 5% x3, rotate, z 0.5": {"screen": True, "screen_fraction": 0.05, "screen_stages": 2,
                                     "screen_rotate": True, "screen_z": 0.5},
    "halving 5% x3, rotate, z 1": {"screen": True, "screen_fraction": 0.05, "screen_stages": 2,
                                   "screen_rotate": True, "screen_z": 1.0},
    "halving 5% x3 x3, rotate, z 1": {"screen": True, "screen_fraction": 0.05, "screen_stages": 3,
                                      "screen_rotate": True, "screen_z": 1.0},
    "gepa (5%, beat by 1, rotate)": {"screen": True, "screen_fraction": 0.05, "screen_margin": -1,
                                     "screen_rotate": True},
    "gepa (3 questions, beat by 1, rotate)": {"screen": True, "screen_fraction": 3 / 261, "screen_margin": -1,
                                              "screen_rotate": True},
}


class _SimulatedProblem(PromptOptimization):
    """PromptOptimization with its split loaded once for all the simulated runs (the loading dominates)."""

    splits: dict = {}

    def _load_train(self):  # type: ignore[no-untyped-def]
        if self.data not in self.splits:
            self.splits[self.data] = super()._load_train()
        return self.splits[self.data]


def simulate(data: str, rule: dict, seed: int, steps: int, per_step: int, top_k: int, checkpoint: int,
             world_settings: SimulationSettings | None = None) -> dict[str, float]:
    """One simulated run: the problem with `rule`'s settings, scored by the simulated scorer."""
    problem = _SimulatedProblem(data=data, score_cache=False, screen_top_k=top_k, **rule)
    world = SimulatedWorld(len(problem.train), seed, world_settings or SimulationSettings())
    scorer = problem.scorer = SimulatedScorer(world, problem.train)  # type: ignore[assignment]
    cut = false_cut = entered = 0
    at_checkpoint: dict[str, float] = {}
    problem.begin_step(0)
    problem.score([world.initial()])
    for step in range(1, steps + 1):
        problem.begin_step(step)
        shown = heapq.nlargest(top_k, problem.full_scores, key=problem.full_scores.__getitem__)  # best first
        for index in range(per_step):
            name = world.propose(step, index, shown)
            best = heapq.nlargest(top_k, problem.full_scores.values())
            bar_score = best[-1] if len(best) == top_k else -1.0  # the k-th best's full score
            problem.score([name])
            would_enter = world.accuracy(name) >= bar_score
            if name in problem.full_scores:
                entered += would_enter
            else:
                cut += 1
                false_cut += would_enter
        if step == checkpoint:
            at_checkpoint = {"calls_at": scorer.calls, "best_at": max(problem.full_scores.values())}
    return {"calls": scorer.calls, "best": max(problem.full_scores.values()), "cut": cut, "false_cut": false_cut,
            "entered": entered, "instructions": 1 + steps * per_step, **at_checkpoint}


def _se(values: list[float]) -> float:
    return stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def summarize(name: str, runs: list[dict], plain: list[dict], calls: str, best: str) -> str:
    """One markdown row: `runs` paired seed by seed with `plain` (the runs without screening)."""
    fewer = [p[calls] / r[calls] for r, p in zip(runs, plain, strict=True)]
    bests = [r[best] for r in runs]
    diffs = [r[best] - p[best] for r, p in zip(runs, plain, strict=True)]
    cut, false_cut = sum(r["cut"] for r in runs), sum(r["false_cut"] for r in runs)
    entrants = false_cut + sum(r["entered"] for r in runs)
    rate = f"{100 * false_cut / cut:.1f}% ({false_cut}/{cut})" if cut else "–"
    lost = f"{100 * false_cut / entrants:.1f}%" if entrants else "–"
    return (f"| {name} | {mean(r[calls] for r in runs):,.0f} | {mean(fewer):.2f}× | {mean(bests):.2f} ± "
            f"{_se(bests):.2f} | {mean(diffs):+.2f} ± {_se(diffs):.2f} | {rate} | {lost} | {len(runs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Local data folder (../shared/data): the GSM8K split")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--per-step", type=int, default=8, help="instructions per step (paper §5.1: 8)")
    parser.add_argument("--top-k", type=int, default=20, help="paper §5.1: 20")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--checkpoint", type=int, default=50, help="also report the figures at this step")
    parser.add_argument("--rules", nargs="*", help="rule names (default: all); 'none' always runs")
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    names = ["none"] + [n for n in (args.rules or RULES) if n != "none"]
    started = time.perf_counter()
    runs = {name: [simulate(data, RULES[name], seed, args.steps, args.per_step, args.top_k, args.checkpoint)
                   for seed in range(args.seeds)] for name in names}
    print(f"simulated scorer: GSM8K split (261 questions), {args.per_step} instructions per step, top-k "
          f"{args.top_k}, seeds 0-{args.seeds - 1}; {time.perf_counter() - started:.0f} s")
    header = ("| rule | scorer calls | fewer calls | best train acc. (%) | paired diff. (points) | false-cut rate "
              "| top-k entrants cut | seeds |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, calls, best in ((f"after {args.steps} steps", "calls", "best"),
                               (f"after {args.checkpoint} steps", "calls_at", "best_at")):
        if calls == "calls_at" and args.checkpoint >= args.steps:
            continue
        print(f"\n{label}" + (" (false cuts: over the whole run)" if calls == "calls_at" else ""))
        print(header)
        for name in names:
            print(summarize(name, runs[name], runs["none"], calls, best))


if __name__ == "__main__":
    main()

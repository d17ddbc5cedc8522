"""The OPRO loop (Yang et al., ICLR 2024, §2): show the best solutions so far, sample new ones, score them.

Each step:
1. the method (loop.method, opro/methods/) proposes the step's candidates; OPRO's renders the meta-prompt
   with the top-k of the trajectory, worst first and best last, for each of `candidates_per_step`;
2. sample the proposals at once, seed = run seed + step * N + index;
3. parse each one; an invalid proposal is kept as a row with its reason and re-sampled, at most
   `resample_rounds` times (every attempt is a row of its own);
4. dedupe against every solution seen in the run;
5. score the new ones as one batch;
6. append the step to the run directory, durably;
7. stop at the known optimum, after `steps` steps, or once a token, cost, evaluation or scorer-call budget
   is spent.

The loop knows nothing of any task or method: the Method proposes and parses, the Problem scores, the LLM
samples.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from opro.config import LoopConfig
from opro.errors import OproError
from opro.llm import LLM, Completion, Request
from opro.llm.pricing import Price
from opro.methods import History, Method, build_method
from opro.problems import Invalid, Problem, PromptTask, StepValues, better
from opro.results import CandidateRow, RunDir, StepRow
from opro.scores import difference, gap_percent

#: Seed offset between a proposal and its re-samples; large so the seeds never meet another step's.
ATTEMPT_SEED_STRIDE = 1_000_003


def sample_seed(seed: int, step: int, index: int, attempt: int, per_step: int) -> int:
    """The seed of one proposal: seed + step * N + index, shifted for re-samples."""
    return seed + step * per_step + index + attempt * ATTEMPT_SEED_STRIDE


class Trajectory:
    """Every valid, distinct solution of the run with its score, in the order found."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.pairs: list[tuple[Any, float]] = []
        self.scores: dict[str, float] = {}
        self.best: float | None = None

    def add(self, solution: Any, score: float) -> bool:
        """Record a new solution; True when it is a new best."""
        self.pairs.append((solution, score))
        self.scores[self.problem.render(solution)] = score
        improved = self.best is None or better(score, self.best, self.problem.minimize)
        if improved:
            self.best = score
        return improved

    @classmethod
    def from_rows(cls, problem: Problem, rows: list[dict[str, str]]) -> Trajectory:
        """The trajectory recorded in candidates.csv rows; a solution that is not one of `problem`'s (a
        config.json edited to another problem) is a one-line OproError."""
        trajectory = cls(problem)
        for number, row in enumerate(rows, 1):
            if row["valid"] == "True" and row["duplicate"] == "False":
                try:
                    solution = problem.decode(row["solution"])
                    same = problem.render(solution) == row["solution"]
                except (ValueError, TypeError, IndexError, KeyError):
                    same = False
                if not same:
                    raise OproError(f"candidates.csv row {number}: {row['solution'][:40]!r} is not a solution of "
                                    f"the {problem.name} problem in config.json")
                trajectory.add(solution, float(row["score"]))
        return trajectory


def optimize(
    problem: Problem,
    llm: LLM | None,
    loop: LoopConfig,
    seed: int,
    templates: tuple[str, str],
    run: RunDir,
    on_step: Callable[[StepRow], None] | None = None,
    price: Price | None = None,
    method: Method | None = None,
) -> dict[str, Any]:
    """Run (or resume) the loop in `run` until it stops; returns and writes summary.json.

    `method` proposes the candidates (default: the one `loop.method` names, built for `problem`).

    `price` turns token counts into cost (cost_usd in steps.csv); `loop.max_cost` needs it. Budgets count
    the tokens each proposal is recorded with, cached replays included, so a budget stops a rerun at the
    same step as the original run. `llm` may be None when no step is left to sample (see `needs_llm`).
    """
    if llm is not None and loop.max_cost is not None and price is None:
        raise OproError(f"loop.max_cost needs the price of {llm.spec}; add it to a price table (optimizer.prices)")
    if loop.max_scorer_calls is not None and SCORER_CALLS not in run.step_extras:
        raise OproError("loop.max_scorer_calls is a budget of scorer LLM calls: it needs a prompt optimization task")
    method = method or build_method(problem, loop, seed, templates)
    last_step = run.state()["last_step"]
    trajectory = Trajectory.from_rows(problem, run.read_candidates())
    if last_step < 0:
        step_row = _initial_step(problem, loop, method, trajectory, run)
        last_step = 0
        if on_step:
            on_step(step_row)
    step = last_step + 1
    while (stop_reason := _stop_reason(problem, loop, trajectory, step, *_spent(run))) is None:
        if llm is None:
            raise ValueError(f"step {step} needs an optimizer LLM")
        step_row = _step(problem, llm, loop, seed, method, trajectory, run, step, price)
        step += 1
        if on_step:
            on_step(step_row)
    summary = summarize(problem, run, stop_reason)
    run.write_summary(summary)
    return summary


def needs_llm(problem: Problem, loop: LoopConfig, run: RunDir) -> bool:
    """Whether continuing `run` samples anything: False when it already stopped (step limit, optimum or
    budget), so that a resume that only rewrites summary.json does not load a model."""
    last_step = run.state()["last_step"]
    if last_step < 0:
        return True
    trajectory = Trajectory.from_rows(problem, run.read_candidates())
    return _stop_reason(problem, loop, trajectory, last_step + 1, *_spent(run)) is None


def _stop_reason(problem: Problem, loop: LoopConfig, trajectory: Trajectory, step: int, tokens: int,
                 cost: float, evaluated: int = 0, scorer_calls: float = 0) -> str | None:
    """Why the loop stops before `step` ("optimum", "steps" or "budget"), or None when it runs that step."""
    if loop.stop_at_optimum and trajectory.best is not None and problem.is_optimal(trajectory.best):
        return "optimum"
    if step > loop.steps:
        return "steps"
    if (loop.max_tokens_total is not None and tokens >= loop.max_tokens_total) or (
            loop.max_cost is not None and cost >= loop.max_cost) or (
            loop.max_evaluated is not None and evaluated >= loop.max_evaluated) or (
            loop.max_scorer_calls is not None and scorer_calls >= loop.max_scorer_calls):
        return "budget"
    return None


#: The steps.csv column of a problem's scorer requests per step (a prompt problem's StepValues).
SCORER_CALLS = "scorer_calls"


def _spent(run: RunDir) -> tuple[int, float, int, float]:
    """What the run's completed steps spent: tokens, cost, proposals scored (new, valid ones; the initial
    solutions not counted) and scorer calls (steps.csv scorer_calls, step 0 included; 0 without it)."""
    steps = run.read_steps()
    tokens = sum(int(s["prompt_tokens"]) + int(s["completion_tokens"]) for s in steps)
    evaluated = sum(int(s["n_new"]) for s in steps if s["step"] != "0")
    scorer_calls = sum(float(s.get(SCORER_CALLS) or 0.0) for s in steps)
    return tokens, sum(float(s["cost_usd"] or 0.0) for s in steps), evaluated, scorer_calls


def _initial_step(problem: Problem, loop: LoopConfig, method: Method, trajectory: Trajectory, run: RunDir) -> StepRow:
    """Step 0: the method's starting solutions (OPRO: the problem's random ones), scored and recorded like
    proposals."""
    started = time.perf_counter()
    if isinstance(problem, PromptTask):
        problem.begin_step(0)
    solutions, extras = method.initial_solutions(loop.num_initial)
    rows = [
        CandidateRow(0, i, 0, None, "", problem.render(s), True, "", False, None, False, 0, 0, "initial")
        for i, s in enumerate(solutions)
    ]
    _dedupe_and_score(problem, trajectory, rows, solutions)
    step_row = StepRow(0, trajectory.best, len(rows), len(rows), sum(not r.duplicate for r in rows), 0, 0, 0, 0,
                       0.0, time.perf_counter() - started, problem.is_optimal(trajectory.best))
    run.append_step(rows, step_row, [], _step_values(problem, 0), extras)
    return step_row


def _step(
    problem: Problem,
    llm: LLM,
    loop: LoopConfig,
    seed: int,
    method: Method,
    trajectory: Trajectory,
    run: RunDir,
    step: int,
    price: Price | None = None,
) -> StepRow:
    started = time.perf_counter()
    if isinstance(problem, PromptTask):
        problem.begin_step(step)
    proposals = method.propose(step, History(trajectory.pairs, run.read_candidates))
    per_step = len(proposals)
    rows: list[CandidateRow] = []
    extras: list[dict[str, str]] = []
    solutions: list[Any] = []
    calls: list[dict[str, Any]] = []
    n_cached = 0
    pending = list(range(per_step))
    for attempt in range(loop.resample_rounds + 1):
        if not pending:
            break
        seeds = [sample_seed(seed, step, i, attempt, per_step) for i in pending]
        requests = [Request(proposals[i].messages, method.temperature, loop.max_tokens, s)
                    for i, s in zip(pending, seeds, strict=True)]
        completions = llm.generate(requests)
        n_cached += sum(c.meta.get("cached") == "1" for c in completions)
        calls += _call_records(step, attempt, proposals, method.temperature, loop, pending, seeds, completions)
        retry = []
        for index, sample_seed_, completion in zip(pending, seeds, completions, strict=True):
            parsed = method.parse(completion.text)
            invalid = isinstance(parsed, Invalid)
            rows.append(CandidateRow(
                step, index, attempt, sample_seed_, _text_hash(completion.text),
                "" if invalid else problem.render(parsed), not invalid, parsed.reason if invalid else "",
                False, None, False, completion.prompt_tokens, completion.completion_tokens,
                completion.finish_reason,
            ))
            extras.append(proposals[index].extras)
            solutions.append(None if invalid else parsed)
            if invalid:
                retry.append(index)
        pending = retry
    _dedupe_and_score(problem, trajectory, rows, solutions)
    valid = [r for r in rows if r.valid]
    prompt_tokens = sum(r.prompt_tokens for r in rows)
    completion_tokens = sum(r.completion_tokens for r in rows)
    step_row = StepRow(
        step=step,
        best_so_far=trajectory.best,
        n_candidates=len(rows),
        n_valid=len(valid),
        n_new=sum(not r.duplicate for r in valid),
        n_resampled=sum(r.attempt > 0 for r in rows),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        n_cached=n_cached,
        cost_usd=None if price is None else (prompt_tokens * price.input + completion_tokens * price.output) / 1e6,
        seconds=time.perf_counter() - started,
        optimal=problem.is_optimal(trajectory.best),
    )
    run.append_step(rows, step_row, calls, _step_values(problem, step), extras)
    return step_row


def _step_values(problem: Problem, step: int) -> dict[str, float | None] | None:
    """The problem's own steps.csv values (StepValues: a prompt problem's validation accuracies), if any."""
    return problem.step_values(step) if isinstance(problem, StepValues) and problem.step_columns else None


def _dedupe_and_score(problem: Problem, trajectory: Trajectory, rows: list[CandidateRow], solutions: list[Any]) -> None:
    """Mark duplicates (against the whole run), score the new solutions in one batch, flag new bests."""
    new: dict[str, Any] = {}
    for row, solution in zip(rows, solutions, strict=True):
        if not row.valid:
            continue
        if row.solution in trajectory.scores or row.solution in new:
            row.duplicate = True
        else:
            new[row.solution] = solution
    scores = dict(zip(new, problem.score(list(new.values())), strict=True))
    for row, solution in zip(rows, solutions, strict=True):
        failed = scores.get(row.solution) if row.valid else None
        if isinstance(failed, Invalid):  # a user's problem could not score it (problems/check.py)
            row.valid, row.invalid_reason, row.duplicate = False, failed.reason, False
        if not row.valid:
            continue
        if row.duplicate:
            row.score = trajectory.scores.get(row.solution, scores.get(row.solution))
            continue
        row.score = scores[row.solution]
        row.new_best = trajectory.add(solution, row.score)


def _call_records(
    step: int, attempt: int, proposals: list[Any], temperature: float, loop: LoopConfig,
    indices: list[int], seeds: list[int], completions: list[Completion],
) -> list[dict[str, Any]]:
    """The llm_calls.jsonl lines of one round of sampling: one per distinct prompt (OPRO: its meta-prompt),
    with the group of raw outputs sampled for it, in the order first asked."""
    groups: dict[str, list[int]] = {}
    for k, index in enumerate(indices):
        groups.setdefault(repr(proposals[index].messages), []).append(k)
    return [_call_record(step, attempt, proposals[indices[ks[0]]].messages, temperature, loop,
                         [indices[k] for k in ks], [seeds[k] for k in ks], [completions[k] for k in ks])
            for ks in groups.values()]


def _call_record(
    step: int, attempt: int, messages: tuple[dict[str, str], ...], temperature: float, loop: LoopConfig,
    indices: list[int], seeds: list[int], completions: list[Completion],
) -> dict[str, Any]:
    """One llm_calls.jsonl line: a prompt and the group of raw outputs sampled for it."""
    return {
        "step": step,
        "attempt": attempt,
        "messages": list(messages),
        "temperature": temperature,
        "max_tokens": loop.max_tokens,
        "outputs": [
            {
                "index": i,
                "seed": s,
                "text": c.text,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "finish_reason": c.finish_reason,
                "seconds": round(c.seconds, 4),
                **({"usage": "estimated"} if c.meta.get("usage") == "estimated" else {}),  # the server's: unknown
            }
            for i, s, c in zip(indices, seeds, completions, strict=True)
        ],
    }


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def summarize(problem: Problem, run: RunDir, stop_reason: str) -> dict[str, Any]:
    """summary.json, computed from the run's files so it is the same after any number of resumes."""
    steps, rows = run.read_steps(), run.read_candidates()
    candidates = [r for r in rows if r["step"] != "0"]
    scored = [r for r in rows if r["valid"] == "True"]
    pick = min if problem.minimize else max
    best_row = pick(scored, key=lambda r: float(r["score"]))
    best = float(best_row["score"])
    baselines = problem.baselines()
    optimum = baselines.get("optimal")
    initial = [float(r["score"]) for r in scored if r["step"] == "0"]
    initial_best = pick(initial) if initial else None
    n_valid = sum(r["valid"] == "True" for r in candidates)
    solved_at = next((int(s["step"]) for s in steps if s["optimal"] == "True"), None)
    return {
        "problem": problem.name,
        "minimize": problem.minimize,
        "best_score": best,
        "best_solution": best_row["solution"],
        "best_step": int(best_row["step"]),
        "optimum": optimum,
        "gap_percent": gap_percent(best, optimum, problem.minimize),
        "initial_best": initial_best,
        "initial_gap_percent": None if initial_best is None else gap_percent(initial_best, optimum, problem.minimize),
        "gap_absolute": difference(best, optimum, problem.minimize),
        "solved": solved_at is not None,
        "steps_to_optimum": solved_at,
        "steps_run": int(steps[-1]["step"]),
        "stop_reason": stop_reason,
        "n_candidates": len(candidates),
        "n_valid": n_valid,
        "valid_rate": n_valid / len(candidates) if candidates else None,
        "n_unique": sum(r["duplicate"] == "False" for r in scored),
        "n_resampled": sum(int(s["n_resampled"]) for s in steps),
        "prompt_tokens": sum(int(s["prompt_tokens"]) for s in steps),
        "completion_tokens": sum(int(s["completion_tokens"]) for s in steps),
        "cost_usd": None if any(s["cost_usd"] == "" for s in steps[1:]) else sum(
            float(s["cost_usd"] or 0.0) for s in steps),
        "n_cached": sum(int(s["n_cached"]) for s in steps),
        "seconds": sum(float(s["seconds"]) for s in steps),
        "baselines": baselines,
        "baseline_gaps_percent": {k: gap_percent(v, optimum, problem.minimize) for k, v in baselines.items()},
        "instance": problem.describe(),
    }

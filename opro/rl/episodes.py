"""Episodes: one meta-prompt plus what it takes to score a new proposal for it.

An episode comes from a run directory (the exact messages of one step of `llm_calls.jsonl`) or is made
fresh from a random instance and a random history, so training is not limited to recorded runs. Its
`row()` is one dataset row (the GRPO format); the problem is rebuilt from `problem` and `settings`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from opro.config import RunConfig, build_config, config_templates
from opro.errors import OproError
from opro.metaprompt import render_meta_prompt, shown_solutions
from opro.problems import Problem, better, build_problem, problem_class


@dataclass(frozen=True)
class Episode:
    """A meta-prompt and its scoring context. Scores follow the problem's direction (`minimize`)."""

    prompt: list[dict[str, str]]
    """The chat messages sent to the optimizer (TRL's conversational `prompt` column)."""
    problem: str
    """Problem kind ("tsp", "linreg")."""
    settings: str
    """The problem's settings as JSON, its instance `seed` included: `build_problem(problem, settings)`."""
    seen: list[str] = field(default_factory=list)
    """Rendered solutions seen before this prompt (the run's history); proposing one again is a duplicate."""
    best_shown: float = 0.0
    """Best score in the meta-prompt (the bar a proposal must beat)."""
    optimum: float | None = None
    """The known optimum of the instance, or None."""
    source: str = ""
    """Where it came from: `RUN_DIR#step` or `fresh:TASK#index`."""

    def row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Episode:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in row.items() if k in names})


@cache
def problem_from(kind: str, settings: str) -> Problem:
    """The problem an episode's `problem` and `settings` columns describe (memoized: instances are immutable)."""
    values = json.loads(settings)
    return build_problem(kind, values, int(values.get("seed", 0)))


def settings_json(config: RunConfig) -> str:
    """The settings column of a run's problem: its preset settings with the effective instance seed."""
    return json.dumps({"seed": config.seed, **config.problem_settings}, sort_keys=True)


def run_episodes(path: Path) -> list[Episode]:
    """One episode per step of a run directory: the step's exact messages and the history before it."""
    config = _run_config(path)
    settings = settings_json(config)
    problem = problem_from(config.problem, settings)
    candidates = _read_csv(path / "candidates.csv")
    episodes = []
    for call in _steps_calls(path):
        step = call["step"]
        before = [r for r in candidates if int(r["step"]) < step and r["valid"] == "True" and r["duplicate"] == "False"]
        pairs = [(problem.decode(r["solution"]), float(r["score"])) for r in before]
        if not pairs:
            continue
        shown = shown_solutions(problem, pairs, config.loop.top_k)
        episodes.append(Episode(
            prompt=[dict(m) for m in call["messages"]], problem=config.problem, settings=settings,
            seen=[r["solution"] for r in before], best_shown=shown[-1][1], optimum=_optimum(problem),
            source=f"{path}#{step}",
        ))
    return episodes


def run_groups(path: Path) -> list[tuple[Episode, list[str]]]:
    """Each step's episode with every raw output sampled for it (all attempts share the messages)."""
    by_step: dict[int, list[str]] = {}
    for call in _read_jsonl(path / "llm_calls.jsonl"):
        by_step.setdefault(int(call["step"]), []).extend(o["text"] for o in call["outputs"])
    return [(e, by_step.get(int(e.source.rpartition("#")[2]), [])) for e in run_episodes(path)]


#: Ranges of the true slope and intercept of fresh linreg instances (paper Table 2: w 2..36, b -1..30).
LINREG_W, LINREG_B = (2, 36), (-1, 30)
#: Instance seeds of training episodes: [2**30, 2**31). Presets, `opro run --seeds`, `opro rl eval` and the
#: benchmarks use seeds below 2**30, so no training episode shares an instance with an evaluation run.
TRAINING_SEEDS = (2**30, 2**31)
#: Instance seeds of held-out episodes (`opro rl eval`): disjoint from TRAINING_SEEDS.
HELD_OUT_SEEDS = (0, 2**30)
HISTORIES = ("random", "run")


def fresh_episodes(
    task: str, count: int, seed: int, sizes: tuple[int, int] | None = None, overrides: dict[str, Any] | None = None,
    vary_lines: bool = True, seeds: tuple[int, int] = HELD_OUT_SEEDS, history: str = "random",
    max_run_steps: int = 8,
) -> list[Episode]:
    """`count` new meta-prompts of a task preset, shown as the loop would show them.

    Instances are random: instance seeds drawn from `seeds` (low inclusive, high exclusive), TSP sizes from
    `sizes`, linreg lines from LINREG_W x LINREG_B but never the preset's own line (so a model trained on
    them has not seen the instance an evaluation of the preset runs on); `vary_lines=False` keeps the preset's
    line (new noise only). Histories: `random`, num_initial..top_k solutions, half of them near-optimal
    (`random_history`); `run`, the solutions of a simulated OPRO run of 0..max_run_steps steps
    (`run_history`), which is what the optimizer sees in a real run of the preset."""
    if history not in HISTORIES:
        raise OproError(f"unknown history {history!r}; known: {', '.join(HISTORIES)}")
    config = build_config(task, overrides or {})
    templates = config_templates(config)
    rng = np.random.default_rng(seed)
    preset_line = (config.problem_settings.get("w_true"), config.problem_settings.get("b_true"))
    fields = {f.name for f in dataclasses.fields(problem_class(config.problem))}
    episodes = []
    for index in range(count):
        settings = {**config.problem_settings, "seed": int(rng.integers(*seeds))}
        if "n" in fields and sizes is not None and not settings.get("instance"):  # a size setting (TSP's nodes)
            settings["n"] = int(rng.integers(sizes[0], sizes[1], endpoint=True))
        if {"w_true", "b_true"} <= fields and vary_lines:  # a new line each time, over the paper's Table 2 range
            line = preset_line
            while line == preset_line:
                line = (float(rng.integers(*LINREG_W, endpoint=True)), float(rng.integers(*LINREG_B, endpoint=True)))
            settings["w_true"], settings["b_true"] = line
        text = json.dumps(settings, sort_keys=True)
        problem = problem_from(config.problem, text)
        if history == "run":
            steps = int(rng.integers(0, max_run_steps, endpoint=True))
            solutions = run_history(problem, rng, config.loop.num_initial, steps, config.loop.candidates_per_step)
        else:
            size = int(rng.integers(config.loop.num_initial, max(config.loop.num_initial, config.loop.top_k),
                                    endpoint=True))
            solutions = random_history(problem, rng, size)
        solutions = _distinct(problem, solutions)
        pairs = list(zip(solutions, problem.score(solutions), strict=True))
        shown = shown_solutions(problem, pairs, config.loop.top_k)
        content = render_meta_prompt(problem, shown, *templates)
        episodes.append(Episode(
            prompt=[{"role": "user", "content": content}], problem=config.problem, settings=text,
            seen=[problem.render(s) for s in solutions], best_shown=shown[-1][1], optimum=_optimum(problem),
            source=f"fresh:{task}#{index}",
        ))
    return episodes


def run_history(problem: Problem, rng: np.random.Generator, num_initial: int, steps: int, per_step: int) -> list[Any]:
    """The solutions of a simulated OPRO run: `num_initial` random ones, then `steps` steps of `per_step`
    proposals, each a small random change of one of the three best so far (three in four) or a new random
    solution. No solver is consulted: the history is as good as a plain stochastic search makes it."""
    solutions = problem.initial_solutions(rng, num_initial)
    for _ in range(steps):
        scores = problem.score(solutions)
        order = sorted(range(len(solutions)), key=lambda i: scores[i] if problem.minimize else -scores[i])
        for _ in range(per_step):
            if rng.random() < 0.25:
                solutions.append(problem.initial_solutions(rng, 1)[0])
            else:
                parent = solutions[order[int(rng.integers(min(3, len(order))))]]
                solutions.append(_perturb(problem, parent, rng))
    return solutions


def random_history(problem: Problem, rng: np.random.Generator, size: int) -> list[Any]:
    """A plausible mid-run history: half random starting solutions, half perturbations of the best solution
    (each strictly worse than it, so a better proposal always exists)."""
    solutions = problem.initial_solutions(rng, size)
    good = strong_solution(problem)
    if good is None:
        return solutions
    best = problem.score([good])[0]
    for i in range(size // 2, size):
        for _ in range(20):
            candidate = _perturb(problem, good, rng)
            if better(best, problem.score([candidate])[0], problem.minimize):
                solutions[i] = candidate
                break
    return solutions


def strong_solution(problem: Problem) -> Any | None:
    """The solver-made best (the problem's `strong_solution`: the certified TSP optimum, the exact integer
    least-squares pair); None if unknown."""
    return problem.strong_solution()


def best_seen(problem: Problem, episode: Episode) -> Any:
    """The best solution of the episode's history (the last one its meta-prompt shows)."""
    solutions = [problem.decode(s) for s in episode.seen]
    scores = problem.score(solutions)
    return solutions[min(range(len(scores)), key=lambda i: scores[i] if problem.minimize else -scores[i])]


def neighbor_step(problem: Problem, episode: Episode) -> Any | None:
    """The solver-made next step from the best solution shown: its best unseen neighbour (the problem's
    `neighbors`: TSP's 2-opt moves, linreg's (w + dw, b + db) for |dw| <= 3, |db| <= 6), if that beats it
    (steepest descent); when none does, the strong solution if it is unseen and better. None otherwise."""
    start, seen = best_seen(problem, episode), set(episode.seen)
    step = _steepest(problem, problem.neighbors(start), seen, episode.best_shown)
    optimum = strong_solution(problem)
    return step if step is not None or optimum is None else _steepest(problem, [optimum], seen, episode.best_shown)


def _steepest(problem: Problem, moves: list[Any], seen: set[str], bar: float) -> Any | None:
    """The best of the unseen `moves` if it beats `bar`, else None."""
    moves = [m for m in moves if problem.render(m) not in seen]
    if not moves:
        return None
    scores = problem.score(moves)
    best = min(range(len(moves)), key=lambda i: scores[i] if problem.minimize else -scores[i])
    return moves[best] if better(scores[best], bar, problem.minimize) else None


def answer_text(problem: Problem, solution: Any) -> str:
    """A proposal in the format the meta-prompt asks for (the problem's `answer_text`: `<trace> ... </trace>`,
    `[w, b]`)."""
    return problem.answer_text(solution)


def _perturb(problem: Problem, solution: Any, rng: np.random.Generator) -> Any:
    """A random nearby solution (the problem's `perturb`); a one-line OproError where it has none."""
    moved = problem.perturb(solution, rng)
    if moved is None:
        raise OproError(f"the {problem.name} problem cannot make synthetic RL histories: it has no perturb hook "
                        "(a random nearby solution)")
    return moved


def _distinct(problem: Problem, solutions: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for s in solutions:
        seen.setdefault(problem.render(s), s)
    return list(seen.values())


def _optimum(problem: Problem) -> float | None:
    return problem.known_optimum()


def _run_config(path: Path) -> RunConfig:
    try:
        return RunConfig.from_dict(json.loads((path / "config.json").read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OproError(f"{path} is not a run directory (config.json: {error})") from error


def _steps_calls(path: Path) -> list[dict[str, Any]]:
    """The first call (attempt 0) of each step: the step's meta-prompt."""
    calls = {}
    for call in _read_jsonl(path / "llm_calls.jsonl"):
        calls.setdefault(int(call["step"]), call)
    return [calls[s] for s in sorted(calls)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise OproError(f"{path.parent} is not a run directory (no {path.name})")
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _read_csv(path: Path) -> list[dict[str, str]]:
    import csv

    if not path.is_file():
        raise OproError(f"{path.parent} is not a run directory (no {path.name})")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))

"""A small results tree for the analysis tests, written by the real loop driven by a scripted LLM.

The scripted LLM replays fixed texts (random tours, (w, b) pairs drifting towards the optimum, and some
unparseable answers); the analysis code under test only reads the files, so the texts need not come from a
model. Layout as `opro run` writes it: `<root>/<task>/<group>/group.json` and one directory per seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from opro.config import build_config, load_templates
from opro.loop import optimize
from opro.problems import build_problem
from opro.results import RunDir, environment, write_json_atomic
from tests.doubles import ScriptedLLM


def scripted_texts(problem: str, seed: int, count: int = 80) -> list[str]:
    """Answers for the scripted optimizer: mostly valid proposals, every fifth one unparseable."""
    rng = np.random.default_rng(seed)
    texts = []
    for k in range(count):
        if k % 5 == 4:
            texts.append("I am not sure.")
        elif problem == "tsp":
            texts.append("<trace>" + ",".join(map(str, rng.permutation(6))) + "</trace>")
        else:
            spread = max(1, 12 - k // 4)
            w, b = 15 + rng.integers(-spread, spread + 1), 14 + rng.integers(-spread, spread + 1)
            texts.append(f"[{w}, {b}]")
    return texts


def write_run(parent: Path, run_id: str, task: str, seed: int, steps: int = 6, **settings) -> Path:
    """One run directory under `parent`, as `opro run` lays it out (config.json with the instance)."""
    overrides = {"seed": seed, "loop.steps": steps, "loop.candidates_per_step": 4, "loop.stop_at_optimum": False,
                 "optimizer.spec": "scripted:replay", **settings}
    if task == "tsp":
        overrides.setdefault("problem.n", 6)
    config = build_config(task, overrides)
    problem = build_problem(config.problem, dict(config.problem_settings), seed)
    templates = load_templates(config.template)
    record = {"config": config.to_dict(), "templates": {"meta": templates[0], "entry": templates[1]},
              "instance": problem.describe(), "optimizer": {"backend": "scripted"}, **environment()}
    run = RunDir.create(parent.parent, parent.name, run_id, record)
    optimize(problem, ScriptedLLM(scripted_texts(config.problem, seed)), config.loop, seed, templates, run)
    return run.path


def write_group(root: Path, task: str, group_id: str, seeds: list[int], **settings) -> Path:
    """A `--seeds` group: group.json plus one run per seed."""
    parent = root / task / group_id
    parent.mkdir(parents=True)
    write_json_atomic(parent / "group.json", {"task": task, "overrides": {}, "seeds": seeds, "instances": None,
                                              "runs": [f"seed{s}" for s in seeds]})
    for seed in seeds:
        write_run(parent, f"seed{seed}", task, seed, **settings)
    return parent


def write_tree(root: Path) -> Path:
    """TSP (n=6) over seeds 0-2 and linear regression over seeds 0-1: 5 runs."""
    write_group(root, "tsp", "g-tsp", [0, 1, 2])
    write_group(root, "linreg", "g-linreg", [0, 1])
    (root / "README.json").write_text(json.dumps({"note": "not a run"}))
    return root


INSTRUCTIONS = [
    "Let's think step by step.",
    "Solve the problem, then write the answer.",
    'Read the question twice, "carefully", and answer with a number.',
    "Break the problem into parts;\nsolve each part, then combine the results.",
    "Take a deep breath and work on this problem step-by-step.",
    "A little bit of arithmetic and a logical approach will help us quickly arrive at the solution.",
]


def write_prompt_run(parent: Path, run_id: str = "prompt-seed0", steps: int = 6, seed: int = 0) -> Path:
    """A synthetic prompt-optimization run (instructions and their training accuracy, higher is better),
    written through the real RunDir writer: the shape prompt-optimization runs have in candidates.csv."""
    from opro.results import CandidateRow, StepRow

    rng = np.random.default_rng(seed)
    config = {"task": "gsm8k", "problem": "gsm8k", "template": "gsm8k", "seed": seed, "problem_settings": {},
              "loop": {"steps": steps, "candidates_per_step": 4}, "optimizer": {"spec": "scripted:replay"},
              "scorer": {"spec": "scripted:scorer"}}
    run = RunDir.create(parent.parent, parent.name, run_id, {"config": config, "instance": {"dataset": "gsm8k"}})
    best = -1.0
    for step in range(steps + 1):
        rows = []
        for index in range(1 if step == 0 else 4):
            text = INSTRUCTIONS[(step * 4 + index) % len(INSTRUCTIONS)] + ("" if step < 2 else f" (v{step}.{index})")
            score = float(np.clip(30 + 6 * step + rng.normal(0, 8), 0, 100))  # accuracy in %, as gsm8k runs
            new_best = score > best
            best = max(best, score)
            rows.append(CandidateRow(step, index, 0, None if step == 0 else seed + step * 4 + index, "0" * 16, text,
                                     True, "", False, score, new_best, 0 if step == 0 else 300, 0 if step == 0 else 40,
                                     "initial" if step == 0 else "stop"))
        tokens = sum(r.prompt_tokens for r in rows), sum(r.completion_tokens for r in rows)
        run.append_step(rows, StepRow(step, best, len(rows), len(rows), len(rows), 0, *tokens, 0, None, 0.1, False), [])
    run.write_summary({"problem": "gsm8k", "minimize": False, "best_score": best, "optimum": None,
                       "steps_run": steps, "stop_reason": "steps", "instance": {"dataset": "gsm8k"}})
    return run.path

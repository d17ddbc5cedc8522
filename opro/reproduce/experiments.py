"""The paper's experiments as grids of ordinary runs: one `Plan` per `opro reproduce EXPERIMENT`.

A plan is a sweep (the same dict a sweep file parses to, run by `opro.sweep`) plus how its cells group
into the rows of the paper's table (`Group`), and, for prompt experiments, what to evaluate on the test
split afterwards. `--scale F` multiplies steps, seeds and training questions by F (at least 1 of each,
5 training questions), and the plan says what it shrank, so a reduced run is labelled as one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from opro.errors import OproError

#: What a reduced run on the embedded model does differently, said in its table.
REDUCED_NOTE = ("This reduced run reuses the meta-prompt's KV cache across a step's proposals in llama.cpp "
                "(optimizer.cache_prompt = true): about 6x faster on 2 cores, but not bit-reproducible; a full "
                "run (--scale 1) keeps it off.")
#: Table 2's true lines (w_true, b_true), in the paper's row order (§3.1).
LINREG_LINES = ((15, 14), (17, 17), (16, 10), (3, 5), (25, 23), (2, 30), (36, -1))
#: Table 3's instance sizes (§3.2).
TSP_SIZES = (10, 15, 20, 50)
#: Prompt experiments run 200 steps in the paper (§5.1, Figures 1 and 7-10).
PROMPT_STEPS = 200
#: Training questions at full scale: 3.5% of GSM8K's train split (§5.1), 20% of a BBH task's 250 (§5.2).
TRAIN_QUESTIONS = {"gsm8k": 261, "bbh": 50}
#: The instructions Table 4 and Figure 5 compare with (§5.2).
GSM8K_BASELINES = ("Let's think step by step.", "Let's solve the problem.", "")
BBH_BASELINE = "Let's think step by step."
#: BBH tasks of a default `bbh` reproduction (any of the 27 with --bbh-tasks; "all" for every one).
DEFAULT_BBH_TASKS = ("navigate", "sports_understanding", "boolean_expressions", "causal_judgement")
#: §5.5: the methods, the starting instructions and the tasks of the EvoPrompt comparison.
EVOPROMPT_METHODS = ("opro", "evoprompt-ga", "evoprompt-de")
EVOPROMPT_START = ("Let's solve the problem.", "Here is the answer.")
EVOPROMPT_TASKS: dict[str, dict[str, Any]] = {"gsm8k": {}, "bbh": {"problem.bbh_task": "sports_understanding"}}
#: §5.3's ablations: a setting and its values; the first value is the preset's (the shared default cell).
ABLATIONS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "order": ("loop.order", ("ascending", "descending", "random")),
    "score_display": ("problem.num_score_buckets", (100, 20, "none")),
    "exemplars": ("problem.num_exemplars", (3, 0, 10)),
    "per_step": ("loop.candidates_per_step", (8, 1, 2, 4, 16)),
    "starting_point": ("problem.initial_instructions",
                       (["Let's solve the problem."], [""], ["Let's think step by step."])),
    "temperature": ("loop.temperature", (1.0, 0.0, 0.5, 1.5, 2.0)),
}


@dataclass(frozen=True)
class Options:
    """What the user chose (`opro reproduce` options)."""

    optimizer: str | None = None
    scorer: str | None = None
    seeds: list[int] | None = None
    scale: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    limit: int | None = None
    """Training and test questions of prompt experiments (over --scale's)."""
    bbh_tasks: tuple[str, ...] = ()
    ablations: tuple[str, ...] = ()
    task: str | None = None
    """The prompt task of `ablations` / `overfitting` (default gsm8k)."""


@dataclass(frozen=True)
class Group:
    """Cells that make one row of the table (e.g. one true line over its seeds)."""

    key: str
    """The paper CSV's `setting` this row matches ("w_true=15;b_true=14", "n=10"), or the ablation value."""
    label: str
    cells: list[str]
    part: str = ""
    """The ablation it belongs to (ablations only)."""


@dataclass(frozen=True)
class Plan:
    experiment: str
    title: str
    """The paper's table or figure, and "(reduced: ...)" when --scale shrank the grid."""
    spec: dict[str, Any]
    """The sweep (as a sweep file parses to)."""
    groups: list[Group]
    scale: float
    reduced: dict[str, list[int]]
    """What --scale changed: name -> [used, the paper's]."""
    evaluate: dict[str, Any] | None = None
    """Prompt experiments: {"split", "limit", "baselines"} of the test-split evaluation after the runs."""
    note: str = ""


def scaled(full: int, scale: float, floor: int = 1) -> int:
    """`full` times `scale`, rounded up, at least `floor` (and never more than `full`)."""
    return min(full, max(floor, math.ceil(full * scale - 1e-9)))


def build(experiment: str, options: Options) -> Plan:
    """The plan of one experiment (nothing runs)."""
    if experiment not in BUILDERS:
        raise OproError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    if not 0 < options.scale <= 1:
        raise OproError(f"--scale must be in (0, 1], got {options.scale}")
    for given, option, experiments in ((options.task, "--task", ("ablations", "overfitting")),
                                       (options.bbh_tasks, "--bbh-tasks", ("bbh",)),
                                       (options.ablations, "--ablation", ("ablations",))):
        if given and experiment not in experiments:
            raise OproError(f"{option} is for {' and '.join(experiments)}, not {experiment}")
    plan = BUILDERS[experiment](options)
    fast = options.scale < 1 and str(options.optimizer or "llamacpp:").startswith("llamacpp:") and \
        "optimizer.cache_prompt" not in options.settings
    if fast:  # a quick look: every proposal of a step shares the meta-prompt, so its KV cache is reused
        spec = {**plan.spec, "set": {**plan.spec["set"], "optimizer.cache_prompt": True}}
        plan = dataclasses.replace(plan, spec=spec, note=REDUCED_NOTE)
    return plan


def _seeds(options: Options, full: int, reduced: dict[str, list[int]]) -> list[int]:
    if options.seeds is not None:
        if len(options.seeds) < full:
            reduced["seeds"] = [len(options.seeds), full]
        return list(options.seeds)
    count = scaled(full, options.scale)
    if count < full:
        reduced["seeds"] = [count, full]
    return list(range(count))


def _steps(full: int, options: Options, reduced: dict[str, list[int]]) -> int:
    steps = scaled(full, options.scale)
    if steps < full:
        reduced["steps"] = [steps, full]
    return steps


def _title(base: str, scale: float, reduced: dict[str, list[int]]) -> str:
    if not reduced:
        return base
    parts = ", ".join(f"{used} of {full} {name.replace('_', ' ')}" for name, (used, full) in reduced.items())
    return f"{base} (reduced run{f', --scale {scale:g}' if scale < 1 else ''}: {parts})"


def _common(options: Options, kind: str) -> dict[str, Any]:
    """Settings for every cell: the user's models and data (the user's --set goes over the plan's settings,
    in `_with_user_settings`)."""
    fixed: dict[str, Any] = {}
    if options.optimizer:
        fixed["optimizer.spec"] = options.optimizer
    elif kind != "prompt":
        fixed["optimizer.spec"] = "llamacpp:smollm2-opro"  # the default of `opro run --task tsp/linreg`
    if options.scorer:
        if kind != "prompt":
            raise OproError("--scorer is for the prompt experiments (table4, bbh, ablations, overfitting, evoprompt)")
        fixed["scorer.spec"] = options.scorer
    if options.data:
        if kind != "prompt":
            raise OproError("--data is for the prompt experiments (table4, bbh, ablations, overfitting, evoprompt)")
        fixed["problem.data"] = options.data
    return fixed


def _with_user_settings(fixed: dict[str, Any], options: Options, full_steps: int,
                        reduced: dict[str, list[int]]) -> dict[str, Any]:
    """The plan's settings for every cell under the user's --set (which wins; fewer steps are labelled)."""
    steps = options.settings.get("loop.steps")
    if isinstance(steps, int) and not isinstance(steps, bool) and 0 < steps < full_steps:
        reduced["steps"] = [steps, full_steps]
    return {**fixed, **options.settings}


def _prompt_sizes(options: Options, dataset: str, reduced: dict[str, list[int]],
                  label: str = "training questions") -> dict[str, Any]:
    full = TRAIN_QUESTIONS.get(dataset, 50)
    count = options.limit if options.limit is not None else scaled(full, options.scale, floor=5)
    if count < full:
        reduced[label] = [count, full]
    return {"problem.train_limit": count} if count < full else {}


def _table2(options: Options) -> Plan:
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 5, reduced)
    steps = _steps(500, options, reduced)
    cells, groups = [], []
    for w, b in LINREG_LINES:
        ids = []
        for seed in seeds:
            cells.append({"problem.w_true": w, "problem.b_true": b, "seed": seed})
            ids.append(_cell_id(cells[-1]))
        groups.append(Group(f"w_true={w};b_true={b}", f"w={w}, b={b}", ids))
    fixed = _with_user_settings({**_common(options, "math"), "loop.steps": steps}, options, 500, reduced)
    spec = {"task": "linreg-paper", "set": fixed, "cells": cells}
    return Plan("table2", _title("Table 2: linear regression (§3.1)", options.scale, reduced), spec, groups,
                options.scale, reduced)


def _table3(options: Options) -> Plan:
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 5, reduced)
    steps = _steps(500, options, reduced)
    groups = [Group(f"n={n}", f"n={n}", [_cell_id({"problem.n": n, "seed": s}) for s in seeds]) for n in TSP_SIZES]
    fixed = _with_user_settings({**_common(options, "math"), "loop.steps": steps}, options, 500, reduced)
    spec = {"task": "tsp-paper", "set": fixed, "axes": {"problem.n": list(TSP_SIZES), "seed": seeds}}
    return Plan("table3", _title("Table 3: traveling salesman (§3.2)", options.scale, reduced), spec, groups,
                options.scale, reduced)


def _test_limit(options: Options) -> int | None:
    return options.limit if options.limit is not None else None


def _table4(options: Options) -> Plan:
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 1, reduced)
    steps = _steps(PROMPT_STEPS, options, reduced)
    fixed = _with_user_settings({**_common(options, "prompt"), **_prompt_sizes(options, "gsm8k", reduced),
                                 "loop.steps": steps}, options, PROMPT_STEPS, reduced)
    spec = {"task": "gsm8k", "set": fixed, "axes": {"seed": seeds}}
    groups = [Group("gsm8k", "GSM8K", [_cell_id({"seed": s}) for s in seeds])]
    return Plan("table4", _title("Table 4: GSM8K instructions, test accuracy (§5.2.1)", options.scale, reduced),
                spec, groups, options.scale, reduced,
                {"split": "test", "limit": _test_limit(options), "baselines": list(GSM8K_BASELINES)})


def _bbh(options: Options) -> Plan:
    from opro.prompting.data import BBH_TASKS

    tasks = list(options.bbh_tasks or DEFAULT_BBH_TASKS)
    if tasks == ["all"]:
        tasks = list(BBH_TASKS)
    unknown = [t for t in tasks if t not in BBH_TASKS]
    if unknown:
        raise OproError(f"unknown BBH task {unknown[0]!r}; known: {', '.join(BBH_TASKS)}")
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 1, reduced)
    steps = _steps(PROMPT_STEPS, options, reduced)
    fixed = _with_user_settings({**_common(options, "prompt"), **_prompt_sizes(options, "bbh", reduced),
                                 "loop.steps": steps}, options, PROMPT_STEPS, reduced)
    spec = {"task": "bbh", "set": fixed, "axes": {"problem.bbh_task": tasks, "seed": seeds}}
    groups = [Group(t, t, [_cell_id({"problem.bbh_task": t, "seed": s}) for s in seeds]) for t in tasks]
    return Plan("bbh", _title("BBH: accuracy gain over \"Let's think step by step.\" (§5.2.2, Figure 5)",
                              options.scale, reduced), spec, groups, options.scale, reduced,
                {"split": "test", "limit": _test_limit(options), "baselines": [BBH_BASELINE]})


def _ablations(options: Options) -> Plan:
    names = list(options.ablations or ABLATIONS)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise OproError(f"unknown ablation {unknown[0]!r}; known: {', '.join(ABLATIONS)}")
    task = options.task or "gsm8k"
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 3, reduced)
    steps = _steps(PROMPT_STEPS, options, reduced)
    fixed = _with_user_settings({**_common(options, "prompt"), **_prompt_sizes(options, task, reduced),
                                 "loop.steps": steps}, options, PROMPT_STEPS, reduced)
    steps = fixed["loop.steps"]
    cells: dict[str, dict[str, Any]] = {}
    groups = []
    for name in names:
        key, values = ABLATIONS[name]
        for value in values:
            ids = []
            for seed in seeds:
                cell = {"seed": seed}
                if value != values[0]:  # the preset's value: the cell every ablation shares
                    cell[key] = value
                if name == "per_step":  # a fixed budget of instructions: 8 per step at the preset's steps
                    cell.update({"loop.candidates_per_step": value, "loop.steps": max(1, steps * 8 // value)})
                    if value == 8:
                        cell = {"seed": seed}
                cells.setdefault(_cell_id(cell), cell)
                ids.append(_cell_id(cell))
            groups.append(Group(_label(value), f"{key} = {_label(value)}", ids, part=name))
    spec = {"task": task, "set": fixed, "cells": list(cells.values())}
    return Plan("ablations", _title(f"Ablations on {task} (§5.3, Figures 7-10)", options.scale, reduced), spec,
                groups, options.scale, reduced)


def _overfitting(options: Options) -> Plan:
    task = options.task or "gsm8k"
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 3, reduced)
    steps = _steps(PROMPT_STEPS, options, reduced)
    fixed = {**_common(options, "prompt"), **_prompt_sizes(options, task, reduced), "loop.steps": steps,
             "problem.validation_ratio": 0.2, "problem.eval_interval": max(1, steps // 10), "problem.eval_test": True}
    if options.limit is not None:
        fixed["problem.validation_limit"] = options.limit
    fixed = _with_user_settings(fixed, options, PROMPT_STEPS, reduced)
    spec = {"task": task, "set": fixed, "axes": {"seed": seeds}}
    groups = [Group(task, task, [_cell_id({"seed": s}) for s in seeds])]
    return Plan("overfitting", _title(f"Overfitting on {task}: train, validation and test accuracy (§5.4)",
                                      options.scale, reduced), spec, groups, options.scale, reduced)


def _evoprompt(options: Options) -> Plan:
    """§5.5: OPRO, EvoPrompt-GA and EvoPrompt-DE from the same two starting instructions, at one budget of
    scorer calls (OPRO's: 8 instructions a step over the steps, times the training questions)."""
    reduced: dict[str, list[int]] = {}
    seeds = _seeds(options, 3, reduced)
    steps = _steps(PROMPT_STEPS, options, reduced)
    sizes = {dataset: _prompt_sizes(options, dataset, reduced, f"{dataset} training questions")
             for dataset in EVOPROMPT_TASKS}
    fixed = _with_user_settings({**_common(options, "prompt"), "loop.steps": 4 * steps,
                                 "problem.initial_instructions": list(EVOPROMPT_START), "loop.num_initial": 2},
                                options, 4 * PROMPT_STEPS, reduced)
    if isinstance(options.settings.get("loop.steps"), int):  # the user's steps set the budget too
        steps = options.settings["loop.steps"]
    cells, groups = [], []
    for dataset, extra in EVOPROMPT_TASKS.items():
        questions = sizes[dataset].get("problem.train_limit", TRAIN_QUESTIONS[dataset])
        budget = 8 * steps * questions
        for method in EVOPROMPT_METHODS:
            ids = []
            for seed in seeds:
                cells.append({"task": dataset, **extra, **sizes[dataset], "loop.method": method,
                              "loop.max_scorer_calls": budget, "seed": seed})
                ids.append(_cell_id(cells[-1]))
            groups.append(Group(method, f"{dataset}: {method}", ids, part=dataset))
    spec = {"set": fixed, "cells": cells}
    return Plan("evoprompt", _title("OPRO against EvoPrompt at equal scorer calls (§5.5)", options.scale, reduced),
                spec, groups, options.scale, reduced,
                {"split": "test", "limit": _test_limit(options), "baselines": list(EVOPROMPT_START)})


def _cell_id(values: dict[str, Any]) -> str:
    from opro.sweep import cell_name

    return cell_name(values)


def _label(value: Any) -> str:
    if isinstance(value, list):
        return " | ".join(repr(v) for v in value)
    return str(value)


BUILDERS = {"table2": _table2, "table3": _table3, "table4": _table4, "bbh": _bbh, "ablations": _ablations,
            "overfitting": _overfitting, "evoprompt": _evoprompt}
#: The experiments, with what they reproduce.
EXPERIMENTS = {
    "table2": "Table 2: linear regression, 7 true lines x 5 seeds, up to 500 steps",
    "table3": "Table 3: TSP, n = 10, 15, 20, 50, 5 instances each, up to 500 steps",
    "table4": "Tables 1 and 4: GSM8K instructions against the baselines, test accuracy",
    "bbh": "Figure 5: per-task BBH gain over \"Let's think step by step.\"",
    "ablations": "§5.3: order, score display, exemplars, instructions per step, starting point, temperature",
    "overfitting": "§5.4: train, validation and test accuracy against step",
    "evoprompt": "§5.5: OPRO against EvoPrompt GA/DE at equal scorer calls, GSM8K and BBH sports_understanding",
}

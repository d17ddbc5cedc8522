"""The plan `opro run --dry-run` prints: each role's model and where it runs, the data, the steps, and the
projected LLM calls, tokens and cost, before any model loads or any file is written.

Projections are estimates: tokens are counted as 4 characters each, a step's meta-prompt is the first one
(the initial solutions, repeated up to top_k), and completions at their limit (`max_tokens`). A prompt
task's scorer is asked once per training example for every new instruction (twice with
`extract_final_answer_by_prompting_again`; `--screen` asks fewer) and once per validation example at an
evaluation step. Costs come from the price table (opro/llm/pricing.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from opro.config import LLMConfig, RunConfig, config_templates
from opro.llm.pricing import LOCAL_BACKENDS, Price, load_prices, price_of
from opro.metaprompt import render_meta_prompt
from opro.problems import PromptTask

#: Characters per token of the estimates (English text and numbers, typical BPE vocabularies).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Usage:
    """Projected LLM use of one role over one run."""

    calls: int
    """Requests, without re-samples of invalid proposals."""
    max_calls: int
    """Requests if every re-sample round is used."""
    prompt_tokens: int
    """Estimated prompt tokens of `calls` requests."""
    completion_tokens: int
    """Completion tokens if every request of `calls` reaches its limit."""

    def cost(self, price: Price | None) -> float | None:
        if price is None:
            return None
        return (self.prompt_tokens * price.input + self.completion_tokens * price.output) / 1e6


def role_line(role: str, llm: LLMConfig, api_key: str | None) -> str:
    """`optimizer  openai:gpt-4o-mini at https://api.openai.com/v1, key present`: the model, where it runs,
    and whether a key is there (never the key)."""
    from opro.llm.openai_backend import is_loopback, public_url

    backend, _, model = llm.spec.partition(":")
    if backend == "openai":
        url = llm.base_url or os.environ.get("OPENAI_BASE_URL")
        key = "present" if (api_key or os.environ.get("OPENAI_API_KEY")) else (
            "none (a server on this machine needs none)" if is_loopback(url) else
            "MISSING (--api-key or $OPENAI_API_KEY)")
        where = f"at {public_url(url) or 'https://api.openai.com/v1'}, key {key}"
    elif backend == "llamacpp":
        where = f"embedded llama.cpp ({model}{', LoRA ' + llm.lora if llm.lora else ''}), no key"
    elif backend == "hf":
        where = f"transformers in this process ({model}), no key"
    else:
        where = "no key"
    return f"{role:<14} {llm.spec} {where}"


def data_line(problem: Any) -> str:
    """The splits of a prompt task and their sizes, else the instance's description."""
    if isinstance(problem, PromptTask):
        sizes = [f"train {len(problem.train)}"]
        if problem.validation:
            sizes.append(f"validation {len(problem.validation)}")
        test = problem.test_size()
        sizes.append(f"test {test}" if test is not None else "test (the dataset's test split, read when scored)")
        return f"{'data':<14} {problem.name}: " + ", ".join(sizes)
    described = problem.describe()
    shown = {k: v for k, v in described.items() if isinstance(v, int | float | str) and not isinstance(v, bool)
             and k not in ("optimal_solution",) and v is not None}
    return f"{'instance':<14} " + ", ".join(f"{k} {v}" for k, v in shown.items())


def optimizer_usage(config: RunConfig, problem: Any) -> Usage:
    """The optimizer's requests and tokens over the run (step 0's initial solutions need none)."""
    loop = config.loop
    per_step = loop.candidates_per_step if loop.method == "opro" else loop.population
    calls = per_step * loop.steps
    prompt = _tokens(_first_meta_prompt(config, problem))
    return Usage(calls, calls * (1 + loop.resample_rounds), calls * prompt, calls * loop.max_tokens)


def scorer_usage(config: RunConfig, problem: Any) -> Usage | None:
    """A prompt task's scorer requests and tokens, scoring every proposal in full (an upper bound on the
    new ones: duplicates and invalid ones are not scored); None for a problem that scores itself."""
    if not isinstance(problem, PromptTask):
        return None
    loop, train = config.loop, problem.train
    per_step = loop.candidates_per_step if loop.method == "opro" else loop.population
    again = 2 if problem.extract_final_answer_by_prompting_again else 1
    initial = len(problem.initial_solutions(np.random.default_rng(config.seed), loop.num_initial))
    validation, interval = len(problem.validation), problem.eval_interval
    eval_steps = (1 + len(range(1, loop.steps + 1, interval))) if interval and validation else 0
    instructions = initial + per_step * loop.steps
    calls = instructions * len(train) * again + eval_steps * per_step * validation
    question = np.mean([len(e.question) for e in train]) if train else 0.0
    prompt = _tokens("x" * int(question)) + 20  # the question, plus the instruction and the Q/A frame
    return Usage(calls, calls, calls * prompt, calls * problem.scorer_max_tokens)


def screen_note(config: RunConfig) -> str | None:
    """Why `--screen` would screen nothing in this run, or None. Screening starts once `screen_top_k`
    instructions (default: loop.top_k) are fully scored, and a short run may never fully score that many: a
    proposal is screened only against the k-th best of the instructions scored before it."""
    settings, loop = dict(config.problem_settings), config.loop
    if not settings.get("screen"):
        return None
    k = settings.get("screen_top_k", loop.top_k)
    per_step = loop.candidates_per_step if loop.method == "opro" else loop.population
    most = loop.num_initial + per_step * loop.steps
    if most > k:
        return None
    return (f"--screen screens nothing here: it starts once {k} instructions are fully scored "
            f"(problem.screen_top_k, default loop.top_k) and this run scores at most {most}; "
            f"set problem.screen_top_k below {most} to screen")


def plan_lines(config: RunConfig, problem: Any, runs: int, api_key: str | None = None) -> list[str]:
    """The plan of one configuration repeated `runs` times (a group's seeds); totals cover every run."""
    from opro.runner import role_key, scorer_config

    prices = load_prices(config.optimizer.prices)
    lines = [role_line("optimizer", config.optimizer, role_key(api_key, "optimizer"))]
    scorer = scorer_config(config) if isinstance(problem, PromptTask) else None
    if scorer is not None:
        lines.append(role_line("scorer", scorer, role_key(api_key, "scorer")))
    lines.append(data_line(problem))
    loop = config.loop
    per_step = loop.candidates_per_step if loop.method == "opro" else loop.population
    lines.append(f"{'steps':<14} {loop.steps} after step 0 ({loop.num_initial} initial solutions); {loop.method} "
                 f"proposes {per_step} a step, re-sampling invalid ones for up to {loop.resample_rounds} more rounds")
    total: float | None = 0.0
    local = True
    for role, llm, usage in (("optimizer", config.optimizer, optimizer_usage(config, problem)),
                             ("scorer", scorer, scorer_usage(config, problem))):
        if usage is None or llm is None:
            continue
        price = price_of(llm.spec, prices)
        cost = usage.cost(price)
        total = None if total is None or cost is None else total + cost * runs
        local = local and llm.spec.partition(":")[0] in LOCAL_BACKENDS
        calls = f"{usage.calls * runs:,} calls" + (f" (at most {usage.max_calls * runs:,} with re-samples)"
                                                    if usage.max_calls > usage.calls else "")
        lines.append(f"{role + ' use':<14} {calls}, ~{usage.prompt_tokens * runs:,} prompt + at most "
                     f"{usage.completion_tokens * runs:,} completion tokens, " + _cost(llm.spec, cost, runs))
    budgets = [f"{name} {getattr(loop, name)}" for name in ("max_tokens_total", "max_cost", "max_evaluated",
                                                             "max_scorer_calls") if getattr(loop, name) is not None]
    total_text = ("unknown (a model's price is not in the table)" if total is None else "$0 (local models)"
                  if local else f"at most ${total:,.4f} (list prices)")
    lines.append(f"{'cost':<14} {total_text}" + (f" over {runs} runs" if runs > 1 else "")
                 + (f"; a budget may stop it sooner: {', '.join(budgets)}" if budgets else ""))
    return lines


def _cost(spec: str, cost: float | None, runs: int) -> str:
    if cost is None:
        return f"price of {spec} unknown (add it with --prices)"
    if spec.partition(":")[0] in LOCAL_BACKENDS:
        return "$0 (local)"
    return f"${cost * runs:,.4f}"


def _first_meta_prompt(config: RunConfig, problem: Any) -> str:
    """Step 1's meta-prompt with the initial solutions, repeated up to top_k (later steps show up to top_k)."""
    meta, entry = config_templates(config)
    initial = problem.initial_solutions(np.random.default_rng(config.seed), config.loop.num_initial)
    shown = [(initial[i % len(initial)], 0.0) for i in range(config.loop.top_k)] if initial else []
    fields = problem.step_fields(1, shown) if isinstance(problem, PromptTask) else None
    return render_meta_prompt(problem, shown, meta, entry, fields)


def _tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)

"""Task presets (TOML) plus command-line overrides, resolved into one frozen `RunConfig`."""

from __future__ import annotations

import dataclasses
import string
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from opro.errors import OproError
from opro.settings import MAX_REPEATS as MAX_REPEATS  # re-exported: callers read it here
from opro.settings import MAX_SEED, Range, check_base_url, check_ranges, check_type, read_text, read_toml

#: Orders of the meta-prompt's solutions (LoopConfig.order).
ORDERS = ("ascending", "descending", "random")
#: How candidates are proposed (LoopConfig.method; opro/methods/).
METHODS = ("opro", "evoprompt-ga", "evoprompt-de", "ape", "gepa")



@dataclass(frozen=True)
class LoopConfig:
    """The OPRO loop's settings. Defaults follow the paper (Yang et al., ICLR 2024, §3)."""

    steps: int = 10
    """Optimization steps after the initial solutions (the paper runs up to 500 for linreg)."""
    candidates_per_step: int = 8
    """Proposals sampled per step (paper §3: 8)."""
    temperature: float = 1.0
    """Optimizer sampling temperature (paper §3: 1.0)."""
    top_k: int = 10
    """Best solutions shown in the meta-prompt, worst first (paper: 20 for linreg, 10 for TSP)."""
    num_initial: int = 5
    """Random starting solutions (paper §3: 5)."""
    order: str = "ascending"
    """Order of the solutions shown in the meta-prompt: "ascending" (worst first, best last; paper §2.2),
    "descending" (best first) or "random" (reshuffled every step, seeded): the paper's §5.3 ablation."""
    max_tokens: int = 256
    """Completion limit per proposal."""
    resample_rounds: int = 2
    """Extra rounds per step that re-sample the proposals that did not parse. The reference code
    re-samples without bound; here it is bounded and every attempt is recorded."""
    stop_at_optimum: bool = True
    """Stop as soon as a proposal reaches the problem's known optimum."""
    max_tokens_total: int | None = None
    """Budget: stop at the step boundary once the run's prompt + completion tokens reach this."""
    max_cost: float | None = None
    """Budget: stop at the step boundary once the run's estimated cost (USD) reaches this."""
    max_evaluated: int | None = None
    """Budget: stop at the step boundary once this many proposals were scored (new, valid ones after step 0):
    the paper's §5.3 comparison of instructions per step at a fixed number of evaluated instructions."""
    max_scorer_calls: int | None = None
    """Budget (prompt tasks): stop at the step boundary once the scorer was asked this many times for the
    training score (steps.csv scorer_calls; score-cache hits count, so reruns and resumes stop alike)."""
    method: str = "opro"
    """How candidates are proposed (opro/methods/): "opro" (the meta-prompt of the top-k, this paper),
    "evoprompt-ga", "evoprompt-de" (Guo et al., ICLR 2024), "ape" (Zhou et al., 2022) or "gepa" (Agrawal et
    al., 2025; the `gepa` extra); the last four are for prompt tasks."""
    population: int = 10
    """evoprompt-* and ape: the population size, and the proposals per step (EvoPrompt §3: 10); step 0 holds
    the task's initial instructions plus manual ones (prompts/evoprompt-initial.txt) up to this many. gepa:
    the proposals (GEPA iterations) per step, drawn from the pool as it stood at the step's start."""
    method_temperature: float | None = None
    """evoprompt-*, ape and gepa: sampling temperature; None: the method's paper value (EvoPrompt §4.1: 0.5;
    APE: 0.9, its generation default; gepa: 1.0, the API default its LM leaves in place). OPRO uses
    `temperature`."""

    LIMITS: ClassVar[dict[str, Range]] = {
        "steps": Range(0, 1_000_000), "candidates_per_step": Range(1, 1024), "temperature": Range(0, 5),
        "top_k": Range(1, 10_000), "num_initial": Range(1, 10_000), "max_tokens": Range(1, 1_000_000),
        "resample_rounds": Range(0, 100), "max_tokens_total": Range(0, None, above=True),
        "max_cost": Range(0, None, above=True), "max_evaluated": Range(1, None),
        "max_scorer_calls": Range(1, None), "population": Range(1, 1024), "method_temperature": Range(0, 5),
    }


@dataclass(frozen=True)
class LLMConfig:
    """An LLM (the optimizer, or a scorer): a backend spec and the backend's options.

    Options of another backend are ignored (a thread count means nothing to a remote server). The API key
    is not a setting: it comes from `--api-key` or `OPENAI_API_KEY` at run time and is never stored.
    """

    spec: str = "llamacpp:smollm2"
    """`llamacpp:smollm2` (the base default model), `llamacpp:smollm2-opro` (it with the project's tuned
    adapter: the tsp and linreg presets' optimizer), `llamacpp:/path/model.gguf`, `openai:MODEL` or `hf:DIR`."""
    threads: int | str | None = None
    """llamacpp: CPU threads (default: the machine's cores, fixed so that a seed gives the same run whatever the
    load); "auto": the faster of all cores and one fewer, timed at start-up (faster beside a busy process, but
    the samples then depend on the load)."""
    n_ctx: int = 4096
    """llamacpp: context length per parallel slot, in tokens."""
    parallel: int = 1
    """llamacpp: sequences decoded at once. More than 1 is faster on big machines but not bit-reproducible."""
    cache_prompt: bool = False
    """llamacpp: reuse the KV cache of a shared prompt prefix. Faster, but not bit-reproducible."""
    poll: int = 0
    """llamacpp: thread busy-wait level, 0-100. 0 sleeps between tasks: far faster on a shared machine."""
    lora: str | None = None
    """llamacpp: a GGUF LoRA adapter (`opro rl export-gguf`) applied to the model."""
    base_url: str | None = None
    """openai: the server's URL (default: `$OPENAI_BASE_URL`, else api.openai.com)."""
    concurrency: int = 8
    """openai: requests in flight at once."""
    timeout: float = 300.0
    """openai: seconds per HTTP attempt before it counts as failed and is retried."""
    max_attempts: int = 6
    """openai: attempts per request (retries with exponential backoff and jitter), then a clear error."""
    use_n: bool | str = False
    """openai: send the candidates of a step as one request with `n` (true), separately (false), or probe
    whether the server honours `n` ("auto")."""
    prices: str | None = None
    """A TOML price table merged over the built-in one (default: `$OPRO_PRICES`)."""
    cache: bool | str = True
    """The persistent LLM-call cache: true (the user cache file), false (off), or a path to a .sqlite file."""
    sampling: dict[str, Any] = field(default_factory=dict)
    """Extra sampling parameters passed to the backend as-is (e.g. top_k, top_p, min_p)."""

    LIMITS: ClassVar[dict[str, Range]] = {
        "threads": Range(1, 4096), "n_ctx": Range(256, 1 << 21), "parallel": Range(1, 1024), "poll": Range(0, 100),
        "concurrency": Range(1, 4096), "timeout": Range(0, 86_400, above=True), "max_attempts": Range(1, 1000),
    }


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. Stored in the run directory's config.json."""

    task: str
    """Preset name or path it was built from."""
    problem: str
    """Problem kind: a built-in ("tsp", "linreg", "gsm8k", "bbh", "mmlu", "prompt"), an `opro.problems` entry
    point or "module:Class" (opro/problems/__init__.py)."""
    template: str
    """Meta-prompt template name in prompts/ or a path to a .meta.txt file."""
    problem_settings: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the problem (e.g. n, instance, w_true)."""
    seed: int = 0
    """Seeds the instance, the initial solutions and every LLM sample."""
    loop: LoopConfig = field(default_factory=LoopConfig)
    optimizer: LLMConfig = field(default_factory=LLMConfig)
    scorer: LLMConfig | None = None
    """The scorer LLM, for tasks whose candidates an LLM evaluates (prompt optimization); None otherwise."""
    results_root: str = "results"
    """Run directories go to `<results_root>/<task>/<run-id>/`."""
    description: str = ""

    LIMITS: ClassVar[dict[str, Range]] = {"seed": Range(0, MAX_SEED)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["loop"] = LoopConfig(**data.get("loop", {}))
        data["optimizer"] = LLMConfig(**data.get("optimizer", {}))
        if data.get("scorer") is not None:
            data["scorer"] = LLMConfig(**data["scorer"])
        return cls(**data)


def checked_config(data: Any) -> RunConfig:
    """A RunConfig from its stored form (config.json's "config"), every name, type and range checked as
    `build_config` checks them; a one-line OproError otherwise."""
    if not isinstance(data, dict):
        raise OproError(f"the run config must be a JSON object, got {type(data).__name__}")
    values = dict(data)
    sections = {}
    for name, cls in (("loop", LoopConfig), ("optimizer", LLMConfig), ("scorer", LLMConfig)):
        section = values.get(name, {} if name != "scorer" else None)
        if section is None and name == "scorer":
            sections[name] = None
            continue
        if not isinstance(section, dict):
            raise OproError(f"{name} must be a table of settings, got {section!r}")
        sections[name] = _checked(cls, dict(section), name)
    for name in sections:
        values.pop(name, None)
    for name in ("task", "problem", "template"):
        if not isinstance(values.get(name), str):
            raise OproError(f"{name} must be str, got {values.get(name)!r}")
    config = _checked(RunConfig, values, "", sections["loop"], sections["optimizer"], sections["scorer"])
    check_run_ranges(config)
    return config


def preset_names() -> list[str]:
    """The packaged presets, by name."""
    return sorted(p.name.removesuffix(".toml") for p in resources.files("opro.tasks").iterdir()
                  if p.name.endswith(".toml"))


def read_preset(task: str) -> dict[str, Any]:
    """A preset by name (`tsp`) or by path (`my.toml`), parsed."""
    if task.endswith(".toml") or "/" in task:
        path = Path(task)
        if not path.is_file():
            raise OproError(f"task file not found: {task}")
        return read_toml(path, f"task file {task}")
    source = resources.files("opro.tasks") / f"{task}.toml"
    if not source.is_file():
        raise OproError(f"unknown task {task!r}; known: {', '.join(preset_names())} (or a path to a .toml)")
    return read_toml(source, f"task {task}")


def parse_override(item: str) -> tuple[str, Any]:
    """`section.key=value` with a TOML value (`loop.steps=5`, `problem.instance="a.tsp"`); bare words are strings."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise OproError(f"bad override {item!r}; expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


#: Keyword -> setting, as `opro run`'s flags name them.
SHORT_NAMES = {
    "steps": "loop.steps", "candidates": "loop.candidates_per_step", "temperature": "loop.temperature",
    "top_k": "loop.top_k", "max_tokens": "loop.max_tokens", "method": "loop.method", "optimizer": "optimizer.spec",
    "scorer": "scorer.spec", "threads": "optimizer.threads", "n_ctx": "optimizer.n_ctx", "base_url":
    "optimizer.base_url", "results": "results_root", "seed": "seed", "data": "problem.data",
}


def keyword_overrides(keywords: dict[str, Any]) -> dict[str, Any]:
    """Keyword settings as dotted overrides: a short name, or `section__name`."""
    out = {}
    for key, value in keywords.items():
        if key in SHORT_NAMES:
            out[SHORT_NAMES[key]] = value
        elif "__" in key:
            section, _, name = key.partition("__")
            out[f"{section}.{name}"] = value
        else:
            raise OproError(f"unknown setting {key!r}; use one of {', '.join(SHORT_NAMES)} or section__name "
                            "(problem__n=6, loop__resample_rounds=0)")
    if isinstance(out.get("problem.data"), str | Path):
        out["problem.data"] = str(Path(out["problem.data"]).resolve())
    return out


def build_config(task: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a preset plus dotted overrides (`loop.steps`, `problem.n`, `seed`, ...) into a RunConfig.

    `llm.NAME` sets NAME for every LLM of the run (the optimizer, and the scorer when there is one).
    """
    preset = read_preset(task)
    preset.pop("track", None)  # where runs are tracked is no run setting (opro/tracking, checked there)
    sections: dict[str, dict[str, Any]] = {
        "loop": _section(preset, "loop", task),
        "optimizer": _section(preset, "optimizer", task),
        "scorer": _section(preset, "scorer", task),
        "problem_settings": _section(preset, "problem", task),
    }
    top = {"task": task, **preset}
    if "kind" in sections["problem_settings"]:
        top["problem"] = sections["problem_settings"].pop("kind")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = key.partition(".")
        section = "problem_settings" if section == "problem" else section
        if section == "llm" and name:  # every LLM of the run: the optimizer, and the scorer if there is one
            sections["optimizer"][name] = value
            sections["scorer"].setdefault("__llm__", {})[name] = value
        elif key == "problem.kind":
            top["problem"] = value
        elif name:
            if section not in sections:
                raise OproError(f"unknown setting section {key.partition('.')[0]!r} in {key!r}")
            sections[section][name] = value
        else:
            top[key] = value
    unknown = sorted(set(top) - {f.name for f in dataclasses.fields(RunConfig)})
    if unknown:
        raise OproError(f"unknown setting {unknown[0]!r} in task {task}")
    if "problem" not in top:
        raise OproError(f"task {task} does not say its problem (kind = ... in [problem])")
    if "template" not in top:
        raise OproError(f"task {task} does not say its template")
    loop = _checked(LoopConfig, sections["loop"], "loop")
    optimizer = _checked(LLMConfig, sections["optimizer"], "optimizer")
    shared = sections["scorer"].pop("__llm__", {})
    if sections["scorer"] and "spec" not in sections["scorer"]:
        raise OproError("scorer settings need a scorer model: --scorer SPEC (or scorer.spec)")
    scorer = _checked(LLMConfig, {**shared, **sections["scorer"]}, "scorer") if sections["scorer"] else None
    config = _checked(RunConfig, {**top, "problem_settings": sections["problem_settings"]}, "",
                      loop, optimizer, scorer)
    check_config(config)
    return config


def check_config(config: RunConfig) -> None:
    """Every check a config gets before anything runs: ranges, the problem's settings, the templates."""
    from opro.problems import check_problem_settings, problem_class
    from opro.results import prepare_output

    check_run_ranges(config)
    check_problem_settings(config.problem, dict(config.problem_settings))
    prepare_output(Path(config.results_root), "results root", folder=True, create=False)
    for llm in (config.optimizer, config.scorer):
        if llm is not None and isinstance(llm.cache, str):
            prepare_output(Path(llm.cache), "LLM-call cache", folder=False, create=False)
        if llm is not None:  # a price table (or $OPRO_PRICES) is checked whether or not a call is priced
            from opro.llm.pricing import load_prices

            load_prices(llm.prices)
        if llm is not None and llm.lora:  # a LoRA adapter by its own name (else llama.cpp blames the base model)
            from opro.llm.gguf_header import check_lora_adapter

            lora = Path(llm.lora).expanduser()
            if not lora.is_file():
                raise OproError(f"LoRA adapter not found: {lora}")
            check_lora_adapter(lora)
    cls = problem_class(config.problem)
    check_templates(*config_templates(config), tuple(cls.TEMPLATE_FIELDS), config.template)
    if not cls.uses_scorer:
        if config.loop.method != "opro":
            raise OproError(f"loop.method {config.loop.method!r} optimizes instructions; the {config.problem} "
                            "problem is not a prompt task (use loop.method = \"opro\")")
        if config.loop.max_scorer_calls is not None:
            raise OproError(f"loop.max_scorer_calls counts scorer LLM calls; the {config.problem} problem has no "
                            "scorer")


def config_templates(config: RunConfig) -> tuple[str, str]:
    """The run's (meta-prompt, history entry) templates: `config.template`, after the problem's
    `resolve_template(template, settings)` where it has one (prompt optimization's "instructions" picks the
    optimizer family's wording from its settings)."""
    from opro.problems import problem_class

    return load_templates(problem_class(config.problem).resolve_template(config.template,
                                                                         dict(config.problem_settings)))


def _section(preset: dict[str, Any], name: str, task: str) -> dict[str, Any]:
    value = preset.pop(name, {})
    if not isinstance(value, dict):
        raise OproError(f"task {task}: {name} must be a table ([{name}]), got {value!r}")
    return dict(value)


def _checked(cls: type, values: dict[str, Any], section: str, *extra: Any) -> Any:
    """Construct `cls` from `values`, with one-line errors for unknown names and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for name, value in values.items():
        label = f"{section}.{name}" if section else name
        if name not in known:
            raise OproError(f"unknown setting {label!r}; known: {', '.join(sorted(known))}")
        values[name] = check_type(label, value, hints[name])
    if extra:
        values["loop"], values["optimizer"], values["scorer"] = extra
    return cls(**values)


def check_run_ranges(config: RunConfig) -> None:
    """The ranges of the run's own, loop and LLM settings (the problem's are check_problem_settings')."""
    check_ranges(config, "")
    check_ranges(config.loop, "loop")
    for name, llm in (("optimizer", config.optimizer), ("scorer", config.scorer)):
        if llm is None:
            continue
        check_ranges(llm, name)
        if llm.base_url is not None:
            check_base_url(f"{name}.base_url", llm.base_url)
        if isinstance(llm.threads, str) and llm.threads != "auto":
            raise OproError(f'{name}.threads must be an integer or "auto", got {llm.threads!r}')
        if isinstance(llm.use_n, str) and llm.use_n != "auto":
            raise OproError(f'{name}.use_n must be true, false or "auto", got {llm.use_n!r}')
    if config.loop.method not in METHODS:
        raise OproError(f"loop.method must be one of {', '.join(METHODS)}, got {config.loop.method!r}")
    if config.loop.method == "gepa":
        from opro.extras import require

        require("gepa", extra="gepa", feature='loop.method "gepa"')
    if config.loop.order not in ORDERS:
        raise OproError(f"loop.order must be one of {', '.join(ORDERS)}, got {config.loop.order!r}")


def check_templates(meta: str, entry: str, fields: tuple[str, ...], name: str) -> None:
    """Render the templates once with the problem's field names (`fields`, besides `history`; an entry has
    `solution` and `score`), so that an unknown `{field}` or an unbalanced brace fails before a run starts."""
    for label, text, known in (("meta-prompt", meta, ("history", *fields)), ("entry", entry, ("solution", "score"))):
        try:
            for _, field_name, _, _ in string.Formatter().parse(text):
                if field_name is not None and field_name not in known:
                    raise OproError(f"template {name} ({label}): unknown field {{{field_name}}}; known: "
                                    f"{', '.join('{' + k + '}' for k in known)} (write {{{{ and }}}} for braces)")
            text.format(**dict.fromkeys(known, ""))
        except (ValueError, IndexError, KeyError, AttributeError) as error:
            raise OproError(f"template {name} ({label}): {error} (write {{{{ and }}}} for literal braces)") from None


def load_templates(template: str) -> tuple[str, str]:
    """The (meta-prompt, history entry) template texts for a name in prompts/ or a .meta.txt path."""
    if template.endswith(".meta.txt"):
        meta_path = Path(template)
        entry_path = meta_path.with_name(meta_path.name.removesuffix(".meta.txt") + ".entry.txt")
        for path in (meta_path, entry_path):
            if not path.is_file():
                raise OproError(f"template file not found: {path}")
        return read_text(meta_path, f"template {meta_path}"), read_text(entry_path, f"template {entry_path}")
    folder = resources.files("opro.prompts")
    meta, entry = folder / f"{template}.meta.txt", folder / f"{template}.entry.txt"
    if not meta.is_file() or not entry.is_file():
        raise OproError(f"unknown template {template!r} (expected prompts/{template}.meta.txt and .entry.txt)")
    return read_text(meta, f"template {template}"), read_text(entry, f"template {template}")

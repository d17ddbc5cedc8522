"""`opro rl eval`: the base and the tuned optimizer on held-out meta-prompts, side by side.

Held-out means other instance seeds than training uses (fresh episodes seeded from `seed`, default 1000,
where `opro rl train` seeds from its own --seed) and, with `runs`, whole OPRO runs on other instances.
Per model it reports, over `samples` proposals for each of `prompts` meta-prompts (an hf: model samples
them as one batch):
- valid_rate: proposals that parse;
- improvement_rate: proposals strictly better than the best solution shown;
- duplicate_rate: valid proposals that repeat a solution already shown;
- mean_reward: the `opro.rl.rewards` reward;
and, with `runs` > 0, full OPRO runs at an equal LLM-call budget (same steps and candidates per step):
mean final gap (%) and the share of runs that reach the optimum, with the mean steps to it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opro.llm import LLM, Request, build_llm
from opro.rl.episodes import Episode, fresh_episodes
from opro.rl.rewards import judge


@dataclass
class ModelReport:
    """One model's figures on one task's held-out set (rates are fractions of all proposals)."""

    spec: str
    task: str
    proposals: int
    valid_rate: float
    improvement_rate: float
    duplicate_rate: float
    mean_reward: float
    runs: int = 0
    mean_final_gap_percent: float | None = None
    solved_rate: float | None = None
    mean_steps_to_optimum: float | None = None


def proposal_figures(llm: LLM, episodes: list[Episode], samples: int, max_tokens: int, temperature: float,
                     seed: int) -> dict[str, float]:
    """Sample `samples` proposals per episode and judge them."""
    judged = []
    for k, episode in enumerate(episodes):
        requests = [Request(tuple(episode.prompt), temperature, max_tokens, seed + k * samples + i)
                    for i in range(samples)]
        judged += [judge(episode, c.text) for c in llm.generate(requests)]
    return figures(judged)


def figures(judged: list[Any]) -> dict[str, float]:
    """The rates and mean reward of judged proposals."""
    count = len(judged)
    return {"proposals": count, "valid_rate": sum(j.valid for j in judged) / count,
            "improvement_rate": sum(j.improved for j in judged) / count,
            "duplicate_rate": sum(j.duplicate for j in judged) / count,
            "mean_reward": sum(j.reward for j in judged) / count}


class HeldOutCallback:
    """A transformers TrainerCallback: `proposal_figures` of the model being trained on held-out meta-prompts
    (instance seeds from 1000, as `opro rl eval`), before the first step and every `eval_every` steps;
    logged through the trainer (log_history, TensorBoard) as heldout/<task>/<figure> and kept in `evals`.
    The torch RNG is restored afterwards. Under DeepSpeed ZeRO-3 (sharded weights) leave eval_every unset."""

    def __init__(self, config: Any, tokenizer: Any, trainer: Any, seed: int = 1000) -> None:
        tasks = [t for t in config.task.split(",") if t]
        self.episodes = {Path(t).name.removesuffix(".toml"): fresh_episodes(t, config.eval_prompts, seed, config.sizes)
                         for t in tasks}
        self.config, self.tokenizer, self.trainer, self.seed = config, tokenizer, trainer, seed
        self.evals: list[dict[str, Any]] = []
        self.max_tokens = getattr(config, "max_completion_length", 64)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluate(state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.config.eval_every == 0:
            self._evaluate(state)

    def __getattr__(self, name: str) -> Any:  # the other TrainerCallback events: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def _evaluate(self, state: Any) -> None:
        if any(e["step"] == state.global_step for e in self.evals):
            return
        import torch

        from opro.llm.hf import HFLLM

        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        side, training = self.tokenizer.padding_side, model.training
        rng = torch.random.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        model.eval()
        llm = HFLLM(model_object=model, tokenizer=self.tokenizer, parallel=self.config.eval_samples,
                    threads=self.config.threads)
        try:
            found = {task: proposal_figures(llm, episodes, self.config.eval_samples, self.max_tokens, 1.0, self.seed)
                     for task, episodes in self.episodes.items()}
        finally:
            self.tokenizer.padding_side = side
            model.train(training)
            torch.random.set_rng_state(rng[0])  # the training samples as it would without the evaluation
            if rng[1] is not None:
                torch.cuda.set_rng_state_all(rng[1])
        self.evals.append({"step": state.global_step, **found})
        # Every process evaluates (the others would wait for the main one anyway, and a collective on one
        # process alone hangs the rest); the main one logs, through transformers' own Trainer.log (TRL's
        # override also flushes its step metrics).
        if state.is_world_process_zero:
            from transformers import Trainer

            control = self.trainer.control
            pending = control.should_log  # on_log clears it: the step's own log (and its gather) must still run
            Trainer.log(self.trainer, {f"heldout/{task}/{name}": value for task, f in found.items()
                                       for name, value in f.items() if name != "proposals"})
            self.trainer.control.should_log = pending


def run_figures(spec: str, task: str, runs: int, steps: int, candidates: int, seed: int, max_tokens: int,
                results: Path, sizes: tuple[int, int] | None) -> dict[str, Any]:
    """Full OPRO runs with `spec` as the optimizer on `runs` held-out instances (problem seeds seed..)."""
    import dataclasses

    from opro.config import build_config
    from opro.problems import problem_class
    from opro.runner import start_run

    gaps, solved = [], []
    for r in range(runs):
        overrides = {"optimizer.spec": spec, "loop.steps": steps, "loop.candidates_per_step": candidates,
                     "loop.max_tokens": max_tokens, "seed": seed + r, "problem.seed": seed + r,
                     "results_root": str(results), "optimizer.cache": False}
        if sizes and "n" in {f.name for f in dataclasses.fields(problem_class(build_config(task).problem))}:
            overrides["problem.n"] = sizes[1] - r % (sizes[1] - sizes[0] + 1)  # the largest first: not solved by chance
        _, summary = start_run(build_config(task, overrides), f"{spec.replace('/', '_').replace(':', '_')}-{r}")
        gaps.append(summary["gap_percent"])
        solved.append(summary["steps_to_optimum"])
    done = [s for s in solved if s is not None]
    return {"runs": runs, "mean_final_gap_percent": sum(g or 0.0 for g in gaps) / runs,
            "solved_rate": len(done) / runs, "mean_steps_to_optimum": sum(done) / len(done) if done else None}


def evaluate(specs: dict[str, str], task: str, out: Path, prompts: int = 8, samples: int = 4, seed: int = 1000,
             sizes: tuple[int, int] | None = (5, 10), max_tokens: int = 64, temperature: float = 1.0,
             runs: int = 0, steps: int = 5, candidates: int = 4) -> list[ModelReport]:
    """Evaluate each labelled model (`{"base": "hf:A", "tuned": "hf:B"}`) on each task of `task` (comma
    separated); writes eval.json, eval.csv, eval.md and eval.png to `out`."""
    tasks = [t for t in task.split(",") if t]
    episodes = {t: fresh_episodes(t, prompts, seed, sizes) for t in tasks}
    reports = []
    for label, spec in specs.items():
        llm = build_llm(spec, {"cache": False, "parallel": samples if spec.startswith("hf:") else None})
        try:
            found = {t: proposal_figures(llm, episodes[t], samples, max_tokens, temperature, seed) for t in tasks}
        finally:
            llm.close()
        for t in tasks:
            extra = (run_figures(spec, t, runs, steps, candidates, seed, max_tokens, out / "runs" / label, sizes)
                     if runs else {})
            reports.append(ModelReport(spec=f"{label} ({spec})", task=Path(t).name.removesuffix(".toml"),
                                       **found[t], **extra))
    write_report(reports, out)
    return reports


def write_report(reports: list[ModelReport], out: Path) -> str:
    """eval.json, eval.csv, eval.md (returned) and eval.png (a bar chart of the rates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([asdict(r) for r in reports])
    table.to_csv(out / "eval.csv", index=False)
    table = table.set_index(table["spec"].str.split(" ").str[0] + " / " + table["task"])
    (out / "eval.json").write_text(json.dumps([asdict(r) for r in reports], indent=1))
    markdown = to_markdown(reports)
    (out / "eval.md").write_text(markdown + "\n")
    columns = ["valid_rate", "improvement_rate", "duplicate_rate", "mean_reward"]
    ax = table[columns].T.plot.bar(rot=0, figsize=(9, 3.5))
    ax.set_title("held-out meta-prompts")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    ax.axhline(0, color="black", linewidth=0.5)
    plt.tight_layout()
    plt.savefig(out / "eval.png", dpi=100)
    plt.close("all")
    return markdown


def to_markdown(reports: list[ModelReport]) -> str:
    """Metrics as rows, models as columns."""
    rows = [f"| metric | {' | '.join(r.spec for r in reports)} |", "| --- |" + " ---: |" * len(reports)]
    for name in list(asdict(reports[0]))[1:]:
        if name.startswith(("runs", "mean_final", "solved", "mean_steps")) and not any(r.runs for r in reports):
            continue
        cells = [_cell(getattr(r, name)) for r in reports]
        rows.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)

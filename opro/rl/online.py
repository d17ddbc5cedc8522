"""The online RL hook: `opro run --optimizer hf:DIR --rl-every K --rl-algo grpo|dpo`.

After every K steps the optimizer model is updated in place, on the groups the run just produced, and the
run goes on with the updated model:
- grpo: GRPO on those K steps' meta-prompts (TRL samples fresh groups and rewards them with opro.rl.rewards);
- dpo: DPO on pairs of the outputs the run sampled for them (the better proposal chosen).
The KL anchor of every update is the base model: TRL loads each update's reference from the optimizer's
directory (hf:DIR, `config._name_or_path`), not from the weights being tuned (the tests check it). Each
update is one line of `rl_updates.jsonl` in the run directory. When the loop ends, the tuned optimizer is
saved in Hugging Face format to `<run dir>/rl_model/` (load it with `--optimizer hf:<run dir>/rl_model`),
recorded by a last line {"final_model": "rl_model", ...}. The optimizer is built without the LLM-call
cache, since its weights change during the run.

LoRA (`lora_rank` > 0; the GPU setting): a new adapter is put on the optimizer's model when the run
starts, and every update trains only the adapter. The KL anchor is then the base model in memory (TRL's
"ref" adapter with zero B matrices, dropped after the update), so no update loads a reference copy from
disk (a full update reloads hf:DIR each time); the
adapter is saved to rl_model/ (an adapter directory on hf:DIR, which `hf:` merges at load). In both cases
the next step's proposals come from the weights just trained, in memory (the backend holds the same
model object). Each update's seconds are in rl_updates.jsonl.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from opro.config import RunConfig
from opro.errors import OproError
from opro.extras import require
from opro.redact import redact_data
from opro.results import RunDir, StepRow

ONLINE_ALGORITHMS = ("grpo", "dpo")


@dataclass(frozen=True)
class OnlineRLConfig:
    """How the run updates its optimizer."""

    every: int = 5
    """Update after every `every` steps, on the meta-prompts of those steps."""
    algo: str = "grpo"
    """"grpo" (fresh groups on the run's meta-prompts) or "dpo" (pairs of the run's own outputs)."""
    train_steps: int = 2
    """Optimizer steps per update."""
    learning_rate: float | None = None
    """None: the algorithm's default (opro.rl.train)."""
    beta: float | None = None
    """KL coefficient; None: the algorithm's default (above 0)."""
    max_completion_length: int = 64
    """GRPO: completion limit of the fresh samples, in tokens."""
    lora_rank: int = 0
    """> 0: updates train a LoRA adapter of this rank (peft), anchored to the adapter-free model in memory."""
    lora_alpha: float | None = None
    """LoRA scale numerator; default 2 x rank."""


class OnlineRL:
    """An `on_step` callback that updates `llm` (an HFLLM) between steps; `finish` saves the tuned model."""

    def __init__(self, llm: Any, config: OnlineRLConfig, seed: int) -> None:
        if config.every < 1 or config.train_steps < 1:
            raise OproError("--rl-every and the update's steps must be >= 1")
        if config.algo not in ONLINE_ALGORITHMS:
            raise OproError(f"--rl-algo must be one of {', '.join(ONLINE_ALGORITHMS)}, got {config.algo!r}")
        if config.lora_rank < 0:
            raise OproError("the online LoRA rank must be >= 0")
        if config.lora_rank:
            from opro.rl.lora import new_adapter

            llm.model = new_adapter(llm.model, config.lora_rank, config.lora_alpha)  # proposals come from it too
        # llm.close() drops its model when the run ends; the hook keeps it to save it then.
        self.model, self.tokenizer, self.config, self.seed = llm.model, llm.tokenizer, config, seed
        self.run: RunDir | None = None
        self.last_step, self.updates = 0, 0

    def start(self, run: RunDir, _config: RunConfig) -> None:
        self.run = run

    def step(self, row: StepRow) -> None:
        self.last_step = row.step
        if row.step > 0 and row.step % self.config.every == 0:
            self.update(row.step)

    def update(self, step: int) -> dict[str, Any]:
        """Train on steps step-every+1..step and append the record to rl_updates.jsonl."""
        from datasets import Dataset

        from opro.rl.episodes import run_groups
        from opro.rl.export import dpo_rows
        from opro.rl.train import DPOTrainConfig, GRPOTrainConfig, build_trainer

        assert self.run is not None
        groups = [g for g in run_groups(self.run.path)
                  if step - self.config.every < int(g[0].source.rpartition("#")[2]) <= step]
        settings = {"steps": self.config.train_steps, "seed": self.seed + step}
        if self.config.learning_rate is not None:
            settings["learning_rate"] = self.config.learning_rate
        if self.config.beta is not None:
            settings["beta"] = self.config.beta
        if self.config.algo == "grpo":
            config: Any = GRPOTrainConfig(**settings, max_completion_length=self.config.max_completion_length)
            rows = [e.row() for e, _ in groups]
        else:
            config = DPOTrainConfig(**settings, batch_size=2)
            rows = dpo_rows(groups)
        record: dict[str, Any] = {"after_step": step, "algo": self.config.algo, "rows": len(rows),
                                  "settings": asdict(config), "reference": "base in memory (LoRA)"
                                  if self.config.lora_rank else "reloaded from disk"}
        if rows:
            started = time.perf_counter()
            trainer = build_trainer(self.config.algo, config, self.model, self.tokenizer, self.run.path / "rl_scratch",
                                    Dataset.from_list(rows))
            if self.config.lora_rank:
                _anchor_to_base(self.model)
            built = time.perf_counter() - started  # the trainer, with its reference (full: loaded from disk)
            trainer.train()
            if "ref" in getattr(self.model, "peft_config", {}):
                self.model.delete_adapter("ref")  # the next update's trainer adds its own
            self.model.eval()
            self.tokenizer.padding_side = "left"
            self.updates += 1
            record.update(seconds=time.perf_counter() - started, build_seconds=built,
                          log=[e for e in trainer.state.log_history if "loss" in e])
        else:
            record["skipped"] = "no training rows (no steps with a history, or no pairs of different reward)"
        self._log(record)
        return record

    def finish(self) -> dict[str, Any]:
        """Save the tuned optimizer (model and tokenizer) to <run dir>/rl_model and log it."""
        assert self.run is not None
        started = time.perf_counter()
        self.model.save_pretrained(self.run.path / "rl_model")
        self.tokenizer.save_pretrained(self.run.path / "rl_model")
        record = {"final_model": "rl_model", "after_step": self.last_step, "updates": self.updates,
                  "seconds": time.perf_counter() - started}
        self._log(record)
        return record

    def _log(self, record: dict[str, Any]) -> None:
        assert self.run is not None
        with (self.run.path / "rl_updates.jsonl").open("a") as handle:
            handle.write(json.dumps(redact_data(record), default=str) + "\n")


def _anchor_to_base(model: Any) -> None:
    """TRL anchors a peft model to a "ref" adapter, a copy of the trained one; zeroing its B matrices makes
    that reference the base model (a LoRA update is B A x), as in the full-weights path."""
    for name, parameter in model.named_parameters():
        if ".ref." in name and "lora_B" in name:
            parameter.data.zero_()


def run_online(config: RunConfig, rl: OnlineRLConfig, run_id: str | None = None, on_start: Any = None,
               on_step: Any = None) -> tuple[RunDir, dict[str, Any]]:
    """`start_run` with an hf: optimizer that the hook updates between steps, saved to <run dir>/rl_model."""
    from opro.llm import build_llm
    from opro.runner import start_run

    if not config.optimizer.spec.startswith("hf:"):
        raise OproError(f"--rl-every needs an hf:DIR optimizer (a model it can train), got {config.optimizer.spec}")
    require("torch", "transformers", "trl", "datasets", extra="rl", feature="--rl-every")
    llm = build_llm(config.optimizer.spec, {"threads": config.optimizer.threads, "sampling": config.optimizer.sampling,
                                            "cache": False})
    hook = OnlineRL(llm, rl, config.seed)

    def started(run: RunDir, run_config: RunConfig) -> None:
        hook.start(run, run_config)
        if on_start:
            on_start(run, run_config)

    def stepped(row: StepRow) -> None:
        if on_step:
            on_step(row)
        hook.step(row)

    run, summary = start_run(config, run_id, started, stepped, optimizer=llm)
    hook.finish()
    return run, summary

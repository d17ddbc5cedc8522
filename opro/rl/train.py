"""`opro rl train`: SFT, GRPO or DPO of the optimizer model on OPRO episodes, with TRL.

Every algorithm has the same shape: a config dataclass (defaults documented on the field), a dataset of
episodes (an export file from `opro rl export`, or fresh meta-prompts made from random instances and
histories), a TRL trainer, and a model saved in Hugging Face format in `output_dir` with `rl_train.json`
(the config, the data source and the training log).

- sft: meta-prompt -> solver-made answer that beats every solution shown (a supervised warm start);
- grpo: groups of `num_generations` proposals per meta-prompt, rewarded by `opro.rl.rewards`, with a KL
  penalty `beta` to the starting model;
- dpo: (chosen, rejected) pairs; fresh pairs prefer the solver's answer over a repeat of a shown solution.

LoRA (`lora_rank` > 0, through peft) trains a small adapter instead of every weight; `opro rl export-gguf`
turns it into a GGUF adapter that llama.cpp applies to the base GGUF. A starting model that is itself an
adapter directory (adapter_config.json) continues training that adapter. The KL anchor of GRPO and DPO is
the model the training starts from (TRL: a frozen copy of the starting adapter, or the base for a new one).

On CPU (no GPU present) training runs in float32 with `use_cpu=True`; small models use one thread.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from opro.config import MAX_SEED, Range, check_ranges
from opro.errors import OproError
from opro.extras import require
from opro.rl.episodes import HISTORIES, TRAINING_SEEDS, Episode, fresh_episodes
from opro.rl.export import TARGETS, load_rows, sft_rows, solver_pairs

ALGORITHMS = ("sft", "grpo", "dpo")


@dataclass
class TrainConfig:
    """Settings every algorithm shares."""

    model: str = ""
    """The starting model: a local Hugging Face directory (`hf:DIR` or `DIR`)."""
    output_dir: str = ""
    """Where the tuned model is saved (HF format), with rl_train.json."""
    task: str = "tsp"
    """Task preset of the fresh episodes (`tsp`, `linreg`, or a .toml path); several with commas."""
    sizes: tuple[int, int] | None = (5, 10)
    """TSP: node counts of the fresh random instances, drawn uniformly from this range (inclusive)."""
    vary_lines: bool = True
    """Linreg: a new true line per fresh instance, never the preset's own (False: the preset's line, new noise)."""
    history: str = "random"
    """Histories of fresh episodes: `random` (half near-optimal) or `run` (a simulated OPRO run of the preset)."""
    data: str | None = None
    """An export file (`opro rl export`) to train on instead of fresh episodes."""
    steps: int = 20
    """Optimizer steps (TRL max_steps)."""
    learning_rate: float = 1e-5
    batch_size: int = 4
    """Sequences per optimizer step (GRPO: completions, num_generations of them per prompt)."""
    seed: int = 0
    """Seeds the fresh episodes, sampling and the trainer."""
    threads: int | None = None
    """CPU threads for torch; default: 1 for models under 500M parameters (faster on shared small CPUs)."""
    save_steps: int | None = None
    """Also save an HF checkpoint every this many steps (checkpoint-N folders); default: only the final one."""
    logging_steps: int = 1
    lora_rank: int = 0
    """LoRA rank of a new adapter on every linear layer but the output head (peft); 0 trains every weight."""
    lora_alpha: float | None = None
    """LoRA scale numerator (the update is scaled by alpha / rank); default 2 x rank."""
    lora_targets: str = "all-linear"
    """Modules that get an adapter: `all-linear`, or comma-separated names (q_proj,v_proj)."""

    LIMITS: ClassVar[dict[str, Range]] = {
        "steps": Range(1, 10_000_000), "learning_rate": Range(0, 1, above=True), "batch_size": Range(1, 4096),
        "seed": Range(0, MAX_SEED), "threads": Range(1, 4096), "save_steps": Range(1, None),
        "logging_steps": Range(1, None), "lora_rank": Range(0, 4096), "lora_alpha": Range(0, None, above=True),
    }


@dataclass
class SFTTrainConfig(TrainConfig):
    """Supervised warm start on solver-made answers."""

    learning_rate: float = 5e-5
    max_length: int = 1024
    """Longest prompt + answer in tokens (longer ones are cut)."""
    target: str = "optimum"
    """The answer taught: `optimum` (certified TSP optimum, integer least squares) or `neighbor`, the best
    unseen neighbour of the best solution shown (a 2-opt move; a small (w, b) step), one steepest-descent step."""

    LIMITS: ClassVar[dict[str, Range]] = {**TrainConfig.LIMITS, "max_length": Range(1, 10_000_000)}


@dataclass
class GRPOTrainConfig(TrainConfig):
    """Group relative policy optimization on the task's reward (DeepSeekMath; TRL GRPOTrainer)."""

    learning_rate: float = 1e-6
    num_generations: int = 4
    """Proposals sampled per meta-prompt: one GRPO group, as one OPRO step samples a group."""
    max_completion_length: int = 64
    """Completion limit in tokens (a TSP trace of 10 nodes is ~25 tokens)."""
    temperature: float = 1.0
    """Sampling temperature of the proposals (paper §3: 1.0)."""
    beta: float = 0.04
    """KL coefficient to the starting model (the RLHF anchor; TRL's default is 0, no anchor)."""

    LIMITS: ClassVar[dict[str, Range]] = {
        **TrainConfig.LIMITS, "num_generations": Range(2, 1024), "max_completion_length": Range(1, 1_000_000),
        "temperature": Range(0, 5), "beta": Range(0, 1000),
    }


@dataclass
class DPOTrainConfig(TrainConfig):
    """Direct preference optimization on (chosen, rejected) proposals of one meta-prompt."""

    learning_rate: float = 5e-6
    beta: float = 0.1
    """KL strength of DPO's implicit reward (higher keeps closer to the reference model)."""
    max_length: int = 1024

    LIMITS: ClassVar[dict[str, Range]] = {**TrainConfig.LIMITS, "beta": Range(0, 1000, above=True),
                                          "max_length": Range(1, 10_000_000)}


CONFIGS: dict[str, type[TrainConfig]] = {"sft": SFTTrainConfig, "grpo": GRPOTrainConfig, "dpo": DPOTrainConfig}


def model_dir(spec: str) -> Path:
    """The local directory of `hf:DIR` or `DIR` (a model, or a LoRA adapter); no hub downloads."""
    path = Path(spec.removeprefix("hf:")).expanduser()
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise OproError(f"not a Hugging Face model directory (no config.json, nor a LoRA adapter's "
                        f"adapter_config.json): {path}")
    return path


def episodes_for(config: TrainConfig, count: int) -> list[Episode]:
    """`count` fresh episodes, spread over the comma-separated tasks, on training instance seeds only."""
    tasks = [t for t in config.task.split(",") if t]
    return [e for k, task in enumerate(tasks)
            for e in fresh_episodes(task, -(-count // len(tasks)), config.seed * 7919 + k, config.sizes,
                                    vary_lines=config.vary_lines, seeds=TRAINING_SEEDS,
                                    history=config.history)][:count]


def check_config(algo: str, config: TrainConfig) -> None:
    """Refuse settings no trainer can use, before anything loads."""
    if algo not in ALGORITHMS:
        raise OproError(f"unknown algorithm {algo!r}; known: {', '.join(ALGORITHMS)}")
    check_ranges(config, "")
    if config.history not in HISTORIES:
        raise OproError(f"unknown history {config.history!r}; known: {', '.join(HISTORIES)}")
    if getattr(config, "target", "optimum") not in TARGETS:
        raise OproError(f"unknown SFT target {config.target!r}; known: {', '.join(TARGETS)}")


def load_model(source: Path, config: TrainConfig, dtype: Any) -> Any:
    """The model to train: a plain model (with a new LoRA adapter when `lora_rank` > 0), or the adapter
    directory `source` on its base, trainable."""
    from transformers import AutoModelForCausalLM

    from opro.rl.lora import adapter_base, new_adapter

    if (source / "adapter_config.json").is_file():
        from peft import PeftModel

        if config.lora_rank:
            raise OproError(f"{source} is a LoRA adapter: it is trained further as it is (drop --lora-rank)")
        base = AutoModelForCausalLM.from_pretrained(adapter_base(source), dtype=dtype)
        return PeftModel.from_pretrained(base, source, is_trainable=True)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return new_adapter(model, config.lora_rank, config.lora_alpha, config.lora_targets) if config.lora_rank else model


def train(algo: str, config: TrainConfig) -> Path:
    """Train and save; returns the output directory."""
    check_config(algo, config)
    require("torch", "transformers", "trl", "datasets", "peft", extra="rl", feature=f"opro rl train --algo {algo}")
    source = model_dir(config.model)
    out = Path(config.output_dir or f"results/rl/{algo}-{time.strftime('%Y%m%d-%H%M%S')}")
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(config.seed)
    gpu = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(source)
    bf16 = gpu and torch.cuda.is_bf16_supported()
    model = load_model(source, config, torch.bfloat16 if bf16 else torch.float32)
    trainer = build_trainer(algo, config, model, tokenizer, out)
    started = time.perf_counter()
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    record = {"algo": algo, "config": dataclasses.asdict(config), "source_model": str(source),
              "seconds": time.perf_counter() - started, "device": "cuda" if gpu else "cpu",
              "log": trainer.state.log_history}
    (out / "rl_train.json").write_text(json.dumps(record, indent=1, default=str))
    return out


def build_trainer(algo: str, config: TrainConfig, model: Any, tokenizer: Any, out: Path, rows: Any = None) -> Any:
    """The TRL trainer of `algo` for an in-memory model; `rows` (a Dataset) replaces the config's data."""
    import torch

    gpu = next(model.parameters()).is_cuda or torch.cuda.is_available()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not gpu:
        params = sum(p.numel() for p in model.parameters())
        torch.set_num_threads(config.threads or (1 if params < 500e6 else torch.get_num_threads()))
    common = dict(output_dir=str(out), max_steps=config.steps, learning_rate=config.learning_rate,
                  per_device_train_batch_size=config.batch_size, seed=config.seed, data_seed=config.seed,
                  logging_steps=config.logging_steps, report_to=[], use_cpu=not gpu,
                  bf16=gpu and torch.cuda.is_bf16_supported(),
                  save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 500,
                  dataloader_num_workers=0, disable_tqdm=True)
    return {"sft": _sft, "grpo": _grpo, "dpo": _dpo}[algo](config, model, tokenizer, common, rows)


def _sft(config: SFTTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if rows is None:
        rows = _data(config, ("prompt", "completion"), "sft") or Dataset.from_list(
            sft_rows(episodes_for(config, config.steps * config.batch_size), config.target))
    rows = rows.select_columns(["prompt", "completion"])
    args = SFTConfig(**common, max_length=config.max_length, completion_only_loss=True)
    return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def _grpo(config: GRPOTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from opro.rl.rewards import opro_reward

    if config.batch_size % config.num_generations:
        raise OproError(f"--batch-size ({config.batch_size}) must be a multiple of --num-generations "
                        f"({config.num_generations})")
    if rows is None:
        count = config.steps * config.batch_size // config.num_generations
        rows = _data(config, ("prompt", "problem", "settings", "seen", "best_shown", "optimum"), "grpo") or (
            Dataset.from_list([e.row() for e in episodes_for(config, count)]))
    args = GRPOConfig(**common, num_generations=config.num_generations, beta=config.beta,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      shuffle_dataset=True)
    return GRPOTrainer(model=model, reward_funcs=[opro_reward()], args=args, train_dataset=rows,
                       processing_class=tokenizer)


def _dpo(config: DPOTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if rows is None:
        rows = _data(config, ("prompt", "chosen", "rejected"), "dpo") or Dataset.from_list(
            solver_pairs(episodes_for(config, config.steps * config.batch_size)))
    rows = rows.select_columns(["prompt", "chosen", "rejected"])
    args = DPOConfig(**common, beta=config.beta, max_length=config.max_length)
    return DPOTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def _data(config: TrainConfig, columns: tuple[str, ...], algo: str) -> Any:
    """The export file `config.data` as a Dataset with the columns `algo` needs (None without one)."""
    if not config.data:
        return None
    rows = load_rows(Path(config.data))
    missing = [c for c in columns if c not in rows.column_names]
    if missing:
        raise OproError(f"the dataset lacks {', '.join(missing)} for {algo} (export it with --format {algo})")
    return rows

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

Scale: `batch_size` sequences per process and micro-step, `grad_accum` micro-steps per optimizer step, so
one step sees batch_size x grad_accum x processes sequences (`global_batch_size` sets grad_accum from that
total). Several processes come from `accelerate launch -m opro.cli rl train ...` (DDP, or DeepSpeed with
`--config_file`); the trainer shards each global batch, so every episode is used once per epoch (GRPO
records how many completions of each episode every process scored: rl_train.json, `episodes_seen`). On
CUDA, bf16 is on when the GPU supports it (`bf16`: None = auto): full fine-tuning keeps float32 master
weights under bf16 autocast (a 1e-6 step is below bf16's resolution), LoRA loads the frozen base in bf16.
`save_steps` writes checkpoints with the optimizer state; `resume_from_checkpoint` ("last" or a
checkpoint-N path) continues a killed training from one. `eval_every` scores held-out meta-prompts
(`opro rl eval`'s figures) every N steps into the log. GRPO can generate through TRL's vLLM integration
(`vllm`: colocate or server).

On CPU (no GPU present) training runs in float32 with `use_cpu=True`; small models use one thread.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from opro.errors import OproError
from opro.extras import require
from opro.rl.episodes import HISTORIES, TRAINING_SEEDS, Episode, fresh_episodes
from opro.rl.export import TARGETS, load_rows, sft_rows, solver_pairs
from opro.settings import MAX_SEED, Range, check_ranges

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
    grad_accum: int = 1
    """Micro-batches accumulated per optimizer step (TRL gradient_accumulation_steps)."""
    global_batch_size: int | None = None
    """Sequences per optimizer step over all processes; sets grad_accum = this / (batch_size x processes)."""
    bf16: bool | None = None
    """bfloat16 mixed precision; None: on when a CUDA GPU supports it (never on CPU)."""
    resume_from_checkpoint: str | None = None
    """Continue a training from a checkpoint of `save_steps` (its optimizer state too): a path, or "last"."""
    eval_every: int | None = None
    """Score `eval_prompts` held-out meta-prompts per task every this many steps (and before the first)."""
    eval_prompts: int = 4
    eval_samples: int = 4
    """Proposals per held-out meta-prompt."""
    report_to: str = "none"
    """TRL's logging integrations: `none`, `tensorboard` (events in output_dir/runs), `mlflow` (the store of
    `$MLFLOW_TRACKING_URI`, experiment `$MLFLOW_EXPERIMENT_NAME`) or `wandb` (`$WANDB_PROJECT`, `$WANDB_MODE`).
    A tracker that cannot be reached is one warning and the training goes on without it."""

    LIMITS: ClassVar[dict[str, Range]] = {
        "steps": Range(1, 10_000_000), "learning_rate": Range(0, 1, above=True), "batch_size": Range(1, 4096),
        "seed": Range(0, MAX_SEED), "threads": Range(1, 4096), "save_steps": Range(1, None),
        "logging_steps": Range(1, None), "lora_rank": Range(0, 4096), "lora_alpha": Range(0, None, above=True),
        "grad_accum": Range(1, 65536), "global_batch_size": Range(1, None), "eval_every": Range(1, None),
        "eval_prompts": Range(1, 10_000), "eval_samples": Range(1, 1024),
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
    vllm: str | None = None
    """Generate through vLLM (TRL use_vllm): `colocate` (in the training processes) or `server` (a
    `trl vllm-serve` process); None: transformers' generate."""
    vllm_gpu_memory_utilization: float = 0.3
    """Colocate: the share of GPU memory vLLM takes (TRL's default 0.3)."""
    vllm_server_url: str | None = None
    """Server: its base URL; None: TRL's default (http://0.0.0.0:8000)."""

    LIMITS: ClassVar[dict[str, Range]] = {
        **TrainConfig.LIMITS, "num_generations": Range(2, 1024), "max_completion_length": Range(1, 1_000_000),
        "temperature": Range(0, 5), "beta": Range(0, 1000), "vllm_gpu_memory_utilization": Range(0, 1, above=True),
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
VLLM_MODES = ("colocate", "server")
REPORT_TO = ("none", "tensorboard", "mlflow", "wandb")


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
    if getattr(config, "vllm", None) not in (None, *VLLM_MODES):
        raise OproError(f"--vllm must be one of {', '.join(VLLM_MODES)}, got {config.vllm!r}")
    if config.report_to not in REPORT_TO:
        raise OproError(f"--report-to must be one of {', '.join(REPORT_TO)}, got {config.report_to!r}")
    accumulation(config)


def world_size() -> int:
    """Processes of this training: accelerate launch / torchrun set WORLD_SIZE; 1 otherwise."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def accumulation(config: TrainConfig, processes: int | None = None) -> int:
    """Micro-batches per optimizer step: `grad_accum`, or what `global_batch_size` implies."""
    processes = processes or world_size()
    if config.global_batch_size is None:
        return config.grad_accum
    per_step = config.batch_size * processes
    if config.global_batch_size % per_step or config.grad_accum not in (1, config.global_batch_size // per_step):
        raise OproError(f"--global-batch-size ({config.global_batch_size}) must be --batch-size ({config.batch_size})"
                        f" x processes ({processes}) x --grad-accum")
    return config.global_batch_size // per_step


def global_batch(config: TrainConfig) -> int:
    """Sequences per optimizer step over all processes (GRPO: completions)."""
    return config.batch_size * accumulation(config) * world_size()


def use_bf16(config: TrainConfig) -> bool:
    """bf16 mixed precision: the explicit setting, else on with a CUDA GPU that supports it."""
    import torch

    if config.bf16 is not None:
        return config.bf16
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def check_chat_template(tokenizer: Any, source: Path) -> None:
    """The meta-prompts are chat messages: a model without a chat template cannot read them."""
    if not getattr(tokenizer, "chat_template", None):
        raise OproError(f"the tokenizer of {source} has no chat template (tokenizer_config.json chat_template or "
                        "chat_template.jinja); use an instruct/chat model, or add a template to it")


def last_checkpoint(out: Path, spec: str) -> str:
    """The checkpoint to resume from: `spec` itself, or the newest checkpoint-N in `out` for "last"."""
    if spec != "last":
        if not (Path(spec) / "trainer_state.json").is_file():
            raise OproError(f"--resume-from-checkpoint {spec}: not a checkpoint folder (no trainer_state.json)")
        return spec
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(out)) if out.is_dir() else None
    if found is None:
        raise OproError(f"--resume-from-checkpoint last: no checkpoint-N folder in {out} (train with --save-steps)")
    return found


def load_model(source: Path, config: TrainConfig, dtype: Any) -> Any:
    """The model to train: a plain model (with a new LoRA adapter when `lora_rank` > 0), or the adapter
    directory `source` on its base, trainable."""
    from transformers import AutoModelForCausalLM

    from opro.llm.hf import adapter_base
    from opro.rl.lora import new_adapter

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
    if world_size() > 1 and not config.output_dir:
        raise OproError("several processes (accelerate launch) need one --out for all of them")
    out = Path(config.output_dir or f"results/rl/{algo}-{time.strftime('%Y%m%d-%H%M%S')}")
    import torch
    from transformers import AutoTokenizer

    if getattr(config, "vllm", None):
        require("vllm", extra="vllm", feature=f"--vllm {config.vllm}")
    if config.report_to != "none":
        require(config.report_to, extra=config.report_to, feature=f"--report-to {config.report_to}")
    if config.report_to in ("mlflow", "wandb"):
        from opro.tracking import report_to_down

        down = report_to_down(config.report_to)
        if down:
            print(f"opro: warning: --report-to {config.report_to} is off: {down}; the training goes on",
                  file=sys.stderr, flush=True)
            config = dataclasses.replace(config, report_to="none")
    resume = last_checkpoint(out, config.resume_from_checkpoint) if config.resume_from_checkpoint else None

    torch.manual_seed(config.seed)
    gpu = torch.cuda.is_available()
    if getattr(config, "vllm", None) and not gpu:
        raise OproError(f"--vllm {config.vllm} needs a CUDA GPU (TRL's vLLM generation); drop it on CPU")
    tokenizer = AutoTokenizer.from_pretrained(source)
    check_chat_template(tokenizer, source)
    bf16 = use_bf16(config)
    # LoRA: the frozen base in bf16; full fine-tuning: float32 master weights under bf16 autocast.
    lora = config.lora_rank > 0 or (source / "adapter_config.json").is_file()
    model = load_model(source, config, torch.bfloat16 if bf16 and lora else torch.float32)
    trainer = build_trainer(algo, config, model, tokenizer, out)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    record = {"algo": algo, "config": dataclasses.asdict(config), "source_model": str(source),
              "seconds": time.perf_counter() - started, "device": "cuda" if gpu else "cpu", "bf16": bf16,
              "processes": trainer.accelerator.num_processes, "global_batch_size": global_batch(config),
              "resumed_from": resume, "global_step": trainer.state.global_step, "log": trainer.state.log_history}
    seen = getattr(trainer, "opro_episodes_seen", None)
    if seen is not None:
        from accelerate.utils import gather_object

        counts = [collections.Counter(ids) for ids in gather_object([seen])]  # per process, in rank order
        record["episodes_seen"] = [{str(k): n for k, n in sorted(c.items())} for c in counts]
    held_out = getattr(trainer, "opro_held_out", None)
    if held_out is not None:
        record["held_out"] = held_out.evals
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))
        (out / "rl_train.json").write_text(json.dumps(record, indent=1, default=str))
    return out


def build_trainer(algo: str, config: TrainConfig, model: Any, tokenizer: Any, out: Path, rows: Any = None) -> Any:
    """The TRL trainer of `algo` for an in-memory model; `rows` (a Dataset) replaces the config's data."""
    trainer = {"sft": _sft, "grpo": _grpo, "dpo": _dpo}[algo](config, model, tokenizer,
                                                              training_args(config, model, tokenizer, out), rows)
    if config.eval_every:
        from opro.rl.evaluate import HeldOutCallback

        trainer.opro_held_out = HeldOutCallback(config, tokenizer, trainer)
        trainer.add_callback(trainer.opro_held_out)
    return trainer


def training_args(config: TrainConfig, model: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    """The TrainingArguments every algorithm shares (sets the pad token and CPU threads on the way)."""
    import torch

    gpu = next(model.parameters()).is_cuda or torch.cuda.is_available()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not gpu:
        params = sum(p.numel() for p in model.parameters())
        torch.set_num_threads(config.threads or (1 if params < 500e6 else torch.get_num_threads()))
    return dict(output_dir=str(out), max_steps=config.steps, learning_rate=config.learning_rate,
                per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=accumulation(config),
                seed=config.seed, data_seed=config.seed, logging_steps=config.logging_steps,
                report_to=[] if config.report_to == "none" else [config.report_to], use_cpu=not gpu,
                bf16=use_bf16(config),
                save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 500,
                dataloader_num_workers=0, disable_tqdm=True)


def _sft(config: SFTTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if rows is None:
        rows = _data(config, ("prompt", "completion"), "sft") or Dataset.from_list(
            sft_rows(episodes_for(config, config.steps * global_batch(config)), config.target))
    rows = rows.select_columns(["prompt", "completion"])
    args = SFTConfig(**common, max_length=config.max_length, completion_only_loss=True)
    return SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


def _grpo(config: GRPOTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import GRPOTrainer

    from opro.rl.rewards import opro_reward

    total = global_batch(config)
    if total % config.num_generations:
        raise OproError(f"the global batch ({total} completions: --batch-size x accumulation x processes) must be "
                        f"a multiple of --num-generations ({config.num_generations})")
    if rows is None:
        count = config.steps * total // config.num_generations  # one epoch: every episode once
        rows = _data(config, ("prompt", "problem", "settings", "seen", "best_shown", "optimum"), "grpo") or (
            Dataset.from_list([e.row() for e in episodes_for(config, count)]))
    if "episode" not in rows.column_names:
        rows = rows.add_column("episode", list(range(len(rows))))
    seen: list[int] = []
    trainer = GRPOTrainer(model=model, reward_funcs=[recording(opro_reward(), seen)], args=grpo_args(config, common),
                          train_dataset=rows, processing_class=tokenizer)
    trainer.opro_episodes_seen = seen
    return trainer


def grpo_args(config: GRPOTrainConfig, common: dict[str, Any]) -> Any:
    """TRL's GRPOConfig of `config`, vLLM generation included (TRL use_vllm / vllm_mode)."""
    from trl import GRPOConfig

    vllm: dict[str, Any] = {}
    if config.vllm:
        vllm = dict(use_vllm=True, vllm_mode=config.vllm, vllm_server_base_url=config.vllm_server_url,
                    vllm_gpu_memory_utilization=config.vllm_gpu_memory_utilization)
    return GRPOConfig(**common, num_generations=config.num_generations, beta=config.beta,
                      max_completion_length=config.max_completion_length, temperature=config.temperature,
                      shuffle_dataset=True, **vllm)


def recording(reward: Any, seen: list[int]) -> Any:
    """`reward` that also appends the episode id of every completion it scores to `seen` (this process's)."""

    def scored(*args: Any, episode: list[int] | None = None, **kwargs: Any) -> list[float]:
        seen.extend(int(e) for e in episode or [])
        return reward(*args, **kwargs)

    scored.__name__ = reward.__name__
    return scored


def _dpo(config: DPOTrainConfig, model: Any, tokenizer: Any, common: dict[str, Any], rows: Any) -> Any:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if rows is None:
        rows = _data(config, ("prompt", "chosen", "rejected"), "dpo") or Dataset.from_list(
            solver_pairs(episodes_for(config, config.steps * global_batch(config))))
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

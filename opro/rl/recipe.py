"""`opro rl tune`: the recipe of the tuned default optimizer, `llamacpp:smollm2-opro`.

From the base GGUF (SmolLM2-135M-Instruct, Q4_1) on CPU, seeded:
1. convert the GGUF to a Hugging Face directory (`opro rl convert`);
2. SFT of a LoRA adapter on solver-made next steps: fresh meta-prompts rendered exactly as the tsp and
   linreg presets render them (10 traces, 20 pairs), with histories of simulated OPRO runs, each answered
   by the best unseen neighbour of the best solution shown (`neighbor_step`);
3. GRPO of the same adapter on the OPRO reward, with the KL anchor at the SFT model;
4. the adapter written as a GGUF adapter (`opro rl export-gguf`), which llama.cpp applies to the base GGUF.

Every instance seed is drawn from `TRAINING_SEEDS`, which no preset, `opro run --seeds`, `opro rl eval`
or benchmark uses, and linreg lines are never the preset's own (15, 14).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opro.llm.models import cache_dir, sha256_file


@dataclass
class TuneConfig:
    """The recipe's settings; the defaults made the shipped adapter (models/smollm2-opro/)."""

    tasks: str = "tsp,linreg"
    """The presets whose meta-prompts are trained on."""
    sizes: tuple[int, int] = (7, 9)
    """TSP node counts of the training instances."""
    lora_rank: int = 8
    lora_alpha: float = 16.0
    sft_steps: int = 40
    sft_batch_size: int = 2
    sft_learning_rate: float = 5e-4
    grpo_steps: int = 4
    grpo_learning_rate: float = 2e-5
    num_generations: int = 4
    """GRPO: proposals per meta-prompt (one group a step)."""
    max_completion_length: int = 40
    beta: float = 0.04
    """GRPO: KL coefficient to the SFT model."""
    seed: int = 0
    threads: int = 1
    """torch CPU threads. 1 keeps its speed when other work shares the cores (2 are faster on idle cores)."""


def tune(out: Path, config: TuneConfig, work: Path | None = None) -> dict[str, Any]:
    """Run the recipe; writes adapter.gguf, rl_train.json and recipe.json into `out`."""
    from opro.results import environment
    from opro.rl.convert import convert_gguf
    from opro.rl.lora import export_gguf
    from opro.rl.train import GRPOTrainConfig, SFTTrainConfig, train

    work = work or out / "work"
    base = cache_dir() / "hf" / "smollm2"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if not (base / "config.json").is_file():
        convert_gguf("smollm2", base)
    timings["convert_s"] = time.perf_counter() - started
    common = dict(task=config.tasks, sizes=config.sizes, seed=config.seed, threads=config.threads,
                  history="run", logging_steps=5)

    started = time.perf_counter()
    sft = train("sft", SFTTrainConfig(
        model=str(base), output_dir=str(work / "sft"), steps=config.sft_steps, batch_size=config.sft_batch_size,
        learning_rate=config.sft_learning_rate, max_length=1024, target="neighbor", lora_rank=config.lora_rank,
        lora_alpha=config.lora_alpha, **common))
    timings["sft_s"] = time.perf_counter() - started
    started = time.perf_counter()
    grpo = train("grpo", GRPOTrainConfig(
        model=str(sft), output_dir=str(work / "grpo"), steps=config.grpo_steps, batch_size=config.num_generations,
        num_generations=config.num_generations, learning_rate=config.grpo_learning_rate, beta=config.beta,
        max_completion_length=config.max_completion_length, **common))
    timings["grpo_s"] = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    written = export_gguf(grpo, out / "adapter.gguf")
    logs = {stage: json.loads((path / "rl_train.json").read_text()) for stage, path in (("sft", sft), ("grpo", grpo))}
    (out / "rl_train.json").write_text(json.dumps(logs, indent=1))
    record = {"recipe": dataclasses.asdict(config), "seconds": timings,
              "total_minutes": sum(timings.values()) / 60, "adapter": written,
              "adapter_sha256": sha256_file(out / "adapter.gguf"), "base_gguf": "smollm2", **environment()}
    (out / "recipe.json").write_text(json.dumps(record, indent=1, default=str))
    return record

"""The RL hook on a GPU against a CPU: GRPO throughput, weight changes and resume, full and LoRA, and the
online hook's time per update, with the project's own trainer (opro.rl.train) on models built here from a
config (no hub, no internet): the tiny test model (tests/tiny_lm.py) and a random ~100M Llama on its
tokenizer.

    python benchmarks/rl_gpu.py --out results/rl_gpu              # this machine's device (cuda if present)
    python benchmarks/rl_gpu.py --device cpu --quick               # the smoke run: tiny model, few steps
    python benchmarks/rl_gpu.py --device both                      # cuda and cpu, each in its own process
    python benchmarks/rl_gpu.py --compare results/a.json results/b.json   # side by side

Per device, model and mode (full, LoRA):
- grpo: `--steps` GRPO steps (batch 8 completions, 4 per meta-prompt, up to 64 new tokens: random
  weights rarely stop early, so the lengths are near the limit); steps/s and generated tokens/s of whole
  steps (generation, reward, backward), steady state (TRL's step_time of the steps after the first; the
  table) and over the whole training including the first (the JSON);
- sft: 4 SFT steps with a checkpoint at step 2 (random weights give GRPO no reward spread, hence no
  gradient, so the weight-change check uses SFT): the weights (or the adapter's B) must move, and a run
  resumed from checkpoint-2 (its optimizer state) must end on the same weights (max |diff| reported);
- online: `opro run --rl-every 1` for 2 steps (Python API), seconds per update, full (TRL reloads the
  reference from disk each update) and LoRA (the reference is the base in memory).
Writes <out>/rl_gpu-<device>.json and prints a table. Sized for under 10 minutes on one H200.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Short linreg meta-prompts (3 pairs shown), as in the tests: the same task for every device.
TASK = """description = "linreg, short meta-prompts (rl_gpu benchmark)"
template = "linreg"
[problem]
kind = "linreg"
[loop]
top_k = 3
num_initial = 2
steps = 2
candidates_per_step = 4
max_tokens = 16
resample_rounds = 0
"""


def build_models(root: Path, quick: bool) -> dict[str, Path]:
    """The tiny test model, and (unless quick) a random ~100M Llama with the tiny model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from tests.tiny_lm import build_tiny_model

    tiny = root / "tiny"
    if not (tiny / "config.json").is_file():
        build_tiny_model(tiny)
    models = {"tiny": tiny}
    if quick:
        return models
    big = root / "llama100m"
    if not (big / "config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(tiny)
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                             num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=4096,
                             tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        model = LlamaForCausalLM(config)
        model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                                   pad_token_id=tokenizer.pad_token_id)
        model.save_pretrained(big)
        tokenizer.save_pretrained(big)
    models["llama100m"] = big
    return models


def grpo_run(model: Path, task: Path, out: Path, lora: bool, steps: int, threads: int | None) -> dict:
    from opro.rl.train import GRPOTrainConfig, train

    config = GRPOTrainConfig(model=str(model), output_dir=str(out), task=str(task), steps=steps, batch_size=8,
                             num_generations=4, max_completion_length=64, learning_rate=1e-5, vary_lines=False,
                             lora_rank=8 if lora else 0, threads=threads)
    record = json.loads((train("grpo", config) / "rl_train.json").read_text())
    logged = [e for e in record["log"] if "completions/mean_length" in e]
    lengths = [e["completions/mean_length"] for e in logged]
    generated = sum(lengths) * record["global_batch_size"]
    # steady state: the steps after the first (CUDA warm-up, kernel selection), by TRL's step_time
    later = logged[1:] or logged
    seconds = sum(e["step_time"] for e in later)
    return {"steps": steps, "seconds": record["seconds"], "steps_per_s": steps / record["seconds"],
            "generated_tokens": generated, "generated_tokens_per_s": generated / record["seconds"],
            "steady_steps_per_s": len(later) / seconds,
            "steady_generated_tokens_per_s": sum(e["completions/mean_length"] for e in later)
            * record["global_batch_size"] / seconds,
            "first_step_s": logged[0]["step_time"], "mean_completion_length": sum(lengths) / len(lengths),
            "bf16": record["bf16"], "device": record["device"]}


def sft_change_and_resume(model: Path, task: Path, out: Path, lora: bool, threads: int | None) -> dict:
    """4 SFT steps (checkpoint every 2); then the same run resumed from a copy of checkpoint-2."""
    from safetensors.torch import load_file

    from opro.rl.train import SFTTrainConfig, train

    def run(target: Path, resume: str | None) -> dict:
        config = SFTTrainConfig(model=str(model), output_dir=str(target), task=str(task), steps=4, batch_size=2,
                                learning_rate=1e-3, vary_lines=False, save_steps=2, lora_rank=8 if lora else 0,
                                threads=threads, resume_from_checkpoint=resume)
        path = train("sft", config)
        name = "adapter_model.safetensors" if lora else "model.safetensors"
        return load_file(str(path / name))

    whole = run(out / "whole", None)
    (out / "resumed").mkdir(parents=True, exist_ok=True)
    shutil.copytree(out / "whole" / "checkpoint-2", out / "resumed" / "checkpoint-2")
    resumed = run(out / "resumed", "last")
    if lora:
        changed = any(v.abs().max().item() > 0 for k, v in whole.items() if "lora_B" in k)  # B starts at zero
    else:
        base = load_file(str(model / "model.safetensors"))
        changed = any(not (base[k] == whole[k]).all() for k in base)
    diff = max((whole[k].float() - resumed[k].float()).abs().max().item() for k in whole)
    state = json.loads((out / "resumed" / "rl_train.json").read_text())
    return {"weights_changed": changed, "resume_global_step": state["global_step"],
            "resume_max_abs_diff": diff, "resumed_from": state["resumed_from"]}


def online_updates(model: Path, task: Path, out: Path, lora: bool) -> dict:
    """Seconds per update of `opro run --rl-every 1` over 2 steps (GRPO, 2 train steps an update)."""
    from opro.config import build_config
    from opro.rl.online import OnlineRLConfig, run_online

    config = build_config(str(task), {"optimizer.spec": f"hf:{model}", "results_root": str(out),
                                      "loop.stop_at_optimum": False})
    run, _ = run_online(config, OnlineRLConfig(every=1, train_steps=2, lora_rank=8 if lora else 0))
    lines = [json.loads(line) for line in (run.path / "rl_updates.jsonl").read_text().splitlines()]
    done = [u for u in lines if u.get("rows")]
    seconds, build = [u["seconds"] for u in done], [u["build_seconds"] for u in done]
    return {"updates": len(done), "seconds_per_update": sum(seconds) / len(done) if done else None,
            "build_seconds_per_update": sum(build) / len(done) if done else None, "seconds": seconds}


NEEDED = ("torch", "transformers", "peft", "accelerate", "trl", "datasets", "pyarrow", "pandas", "scipy",
          "safetensors", "tokenizers", "opro.prompts")


def missing_modules() -> list[str]:
    """The modules this script needs that are not importable (opro.prompts: opro is not pip-installed)."""
    import importlib.util

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except ModuleNotFoundError:
            return True

    return [name for name in NEEDED if absent(name)]


def measure(args: argparse.Namespace) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = args.out / device
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    task = out / "linreg-short.toml"
    task.write_text(TASK)
    models = build_models(args.out / "models", args.quick)
    steps = 2 if args.quick else args.steps
    result: dict = {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                    "torch": torch.__version__, "threads": args.threads, "quick": args.quick, "rows": []}
    for name, path in models.items():
        for mode in ("full", "lora"):
            lora = mode == "lora"
            started = time.perf_counter()
            row = {"model": name, "mode": mode,
                   "grpo": grpo_run(path, task, out / f"{name}-{mode}-grpo", lora, steps, args.threads),
                   "sft": sft_change_and_resume(path, task, out / f"{name}-{mode}-sft", lora, args.threads)}
            if name == "tiny" or not args.quick:
                row["online"] = online_updates(path, task, out / f"{name}-{mode}-online", lora)
            row["wall_s"] = time.perf_counter() - started
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    (args.out / f"rl_gpu-{device}.json").write_text(json.dumps(result, indent=1))
    return result


def table(results: list[dict]) -> str:
    """Markdown: one row per model and mode, the devices' figures side by side."""
    devices = [r["device"] + (" (quick)" if r.get("quick") else "") for r in results]
    head = ["model", "mode"] + [f"{d} {c}" for d in devices for c in ("steps/s", "gen tok/s", "update s (build)")]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * 2 + " ---: |" * (len(head) - 2)]
    keys = [(row["model"], row["mode"]) for row in results[0]["rows"]]
    for key in keys:
        cells = list(key)
        for result in results:
            row = next((r for r in result["rows"] if (r["model"], r["mode"]) == key), None)
            if row is None:
                cells += ["-"] * 3
                continue
            online = row.get("online") or {}
            update, build = online.get("seconds_per_update"), online.get("build_seconds_per_update")
            grpo = row["grpo"]
            cells += [f"{grpo.get('steady_steps_per_s', grpo['steps_per_s']):.3f}",
                      f"{grpo.get('steady_generated_tokens_per_s', grpo['generated_tokens_per_s']):.0f}",
                      "-" if update is None else f"{update:.2f}" + (f" ({build:.2f})" if build is not None else "")]
        lines.append("| " + " | ".join(cells) + " |")
    checks = [f"{r['device']} {row['model']}/{row['mode']}: weights changed {row['sft']['weights_changed']}, "
              f"resumed to step {row['sft']['resume_global_step']} (max |diff| vs unbroken "
              f"{row['sft']['resume_max_abs_diff']:.2e})" for r in results for row in r["rows"]]
    return "\n".join(lines + [""] + checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/rl_gpu"))
    parser.add_argument("--device", choices=["auto", "cpu", "both"], default="auto",
                        help="auto: cuda when present; cpu hides the GPU; both: one process each.")
    parser.add_argument("--steps", type=int, default=8, help="GRPO steps per run.")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: opro's, 1 for small models).")
    parser.add_argument("--quick", action="store_true", help="The tiny model only, 2 GRPO steps.")
    parser.add_argument("--compare", nargs="+", type=Path, help="Print the table of these result files.")
    args = parser.parse_args()
    if args.compare:
        print(table([json.loads(p.read_text()) for p in args.compare]))
        return
    if args.device == "both":
        files = []
        for device in ("auto", "cpu"):
            command = [sys.executable, __file__, "--device", device, "--out", str(args.out), "--steps", str(args.steps)]
            command += ["--quick"] * args.quick + (["--threads", str(args.threads)] if args.threads else [])
            subprocess.run(command, check=True)
            files.append(args.out / ("rl_gpu-cpu.json" if device == "cpu" else "rl_gpu-cuda.json"))
        print(table([json.loads(p.read_text()) for p in files if p.is_file()]))
        return
    missing = missing_modules()
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (see notes/rl-gpu-benchmarks-README.md: carried wheels)")
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    print(table([measure(args)]))


if __name__ == "__main__":
    main()

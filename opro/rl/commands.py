"""`opro rl ...`: export trajectories, train the optimizer, convert the default model, evaluate. Parsing only."""

from __future__ import annotations

import os
from pathlib import Path

import click

from opro.errors import OproError


def _sizes(text: str | None) -> tuple[int, int] | None:
    """`5-10` or `8` -> (5, 10) or (8, 8)."""
    if text is None:
        return None
    low, _, high = text.partition("-")
    try:
        sizes = int(low), int(high or low)
    except ValueError as error:
        raise OproError(f"--sizes must be N or LOW-HIGH, got {text!r}") from error
    if sizes[0] < 3 or sizes[1] < sizes[0]:
        raise OproError(f"--sizes must be 3 <= LOW <= HIGH, got {text!r}")
    return sizes


@click.group()
def rl() -> None:
    """The RL hook: improve the optimizer model itself on OPRO episodes (needs the `rl` extra)."""


@rl.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["grpo", "dpo", "sft"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="A .jsonl or .parquet file.")
@click.option("--max-pairs", type=int, default=4, show_default=True, help="DPO: pairs per meta-prompt at most.")
def export(run_dirs: tuple[str, ...], fmt: str, out: str, max_pairs: int) -> None:
    """Write the runs' meta-prompts as a GRPO, DPO or SFT dataset."""
    from opro.results import prepare_output
    from opro.rl.export import export_runs

    prepare_output(Path(out), "--out", folder=False, create=False)
    count = export_runs([Path(d) for d in run_dirs], fmt, Path(out), max_pairs)
    click.echo(f"{count} {fmt} rows -> {out}")


@rl.command()
@click.option("--model", required=True, help="Starting model: hf:DIR (see `opro rl convert` for the default).")
@click.option("--algo", type=click.Choice(["sft", "grpo", "dpo"]), required=True)
@click.option("--task", default="tsp", show_default=True, help="Preset(s) of the fresh episodes, e.g. tsp,linreg.")
@click.option("--sizes", default="5-10", show_default=True, help="TSP node counts of the fresh instances.")
@click.option("--data", type=click.Path(dir_okay=False), help="Train on an `opro rl export` file instead.")
@click.option("--out", "output_dir", type=click.Path(file_okay=False), help="Output model directory.")
@click.option("--steps", type=int, help="Optimizer steps.")
@click.option("--lr", "learning_rate", type=float, help="Learning rate (default per algorithm).")
@click.option("--batch-size", type=int, help="Sequences per step (GRPO: completions).")
@click.option("--num-generations", type=int, help="GRPO: proposals per meta-prompt.")
@click.option("--max-completion-length", type=int, help="GRPO: completion limit in tokens.")
@click.option("--beta", type=float, help="KL coefficient to the starting model (GRPO 0.04, DPO 0.1).")
@click.option("--seed", type=int, help="Seeds the episodes and the trainer.")
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("--save-steps", type=int, help="Also save a checkpoint every N steps.")
@click.option("--lora-rank", type=int, help="Train a LoRA adapter of this rank (peft) instead of every weight.")
@click.option("--lora-alpha", type=float, help="LoRA alpha (update scale alpha / rank; default 2 x rank).")
@click.option("--lora-targets", help="LoRA modules: all-linear (default) or names, e.g. q_proj,v_proj.")
@click.option("--history", type=click.Choice(["random", "run"]),
              help="Fresh episodes' histories: random (half near-optimal) or a simulated OPRO run.")
@click.option("--target", type=click.Choice(["optimum", "neighbor"]),
              help="SFT: teach the optimum, or one steepest-descent step from the best solution shown.")
@click.option("--grad-accum", type=int, help="Micro-batches accumulated per optimizer step (default 1).")
@click.option("--global-batch-size", type=int,
              help="Sequences per optimizer step over all processes; sets --grad-accum.")
@click.option("--bf16/--no-bf16", default=None, help="bf16 mixed precision (default: on a CUDA GPU that has it).")
@click.option("--resume-from-checkpoint", metavar="PATH|last",
              help="Continue from a --save-steps checkpoint (optimizer state too); last: the newest in --out.")
@click.option("--eval-every", type=int, help="Score held-out meta-prompts every N steps (into rl_train.json).")
@click.option("--eval-prompts", type=int, help="Held-out meta-prompts per task (default 4).")
@click.option("--eval-samples", type=int, help="Proposals per held-out meta-prompt (default 4).")
@click.option("--report-to", type=click.Choice(["none", "tensorboard", "mlflow", "wandb"]),
              help="TRL logging (default none); mlflow and wandb use TRL's own integrations (docs/tracking.md).")
@click.option("--vllm", type=click.Choice(["colocate", "server"]),
              help="GRPO: generate with vLLM (TRL; needs opro[vllm]); default: transformers generate.")
@click.option("--vllm-gpu-memory-utilization", type=float, help="--vllm colocate: GPU memory share (0.3).")
@click.option("--vllm-server-url", help="--vllm server: the `trl vllm-serve` URL (default http://0.0.0.0:8000).")
def train(model: str, algo: str, task: str, sizes: str, data: str | None, output_dir: str | None, **options) -> None:
    """Tune the optimizer model with SFT, GRPO or DPO (TRL); saves an HF model directory.

    Several processes (GPUs, or CPU processes): accelerate launch [--config_file F] -m opro.cli rl train ..."""
    from opro.rl.train import CONFIGS
    from opro.rl.train import train as run_training

    fields = CONFIGS[algo].__dataclass_fields__
    given = {k: v for k, v in options.items() if v is not None}
    wrong = [k for k in given if k not in fields]
    if wrong:
        raise OproError(f"--{wrong[0].replace('_', '-')} is not a {algo} setting")
    if output_dir:
        from opro.results import prepare_output

        prepare_output(Path(output_dir), "--out", folder=True, create=False)
    config = CONFIGS[algo](model=model, output_dir=output_dir or "", task=task, sizes=_sizes(sizes), data=data,
                           **given)
    out = run_training(algo, config)
    if os.environ.get("RANK", "0") != "0":  # accelerate launch: the main process reports
        return
    kind = "LoRA adapter" if (out / "adapter_config.json").is_file() else "model"
    click.echo(f"saved {algo} {kind} -> {out}  (use it with --optimizer hf:{out})")


@rl.command()
@click.option("--out", default="models/smollm2-opro", show_default=True, type=click.Path(file_okay=False))
@click.option("--sft-steps", type=int, help="SFT steps (recipe default 40).")
@click.option("--grpo-steps", type=int, help="GRPO steps (recipe default 4).")
@click.option("--threads", type=int, help="torch CPU threads (recipe default 1).")
@click.option("--seed", type=int, help="Seeds the training episodes and the trainers (recipe default 0).")
def tune(out: str, **options) -> None:
    """Train the tuned default optimizer (llamacpp:smollm2-opro): LoRA SFT then GRPO, exported as a GGUF adapter."""
    from opro.rl.recipe import TuneConfig
    from opro.rl.recipe import tune as run_recipe

    config = TuneConfig(**{k: v for k, v in options.items() if v is not None})
    if min(config.sft_steps, config.grpo_steps, config.threads) < 1:
        raise OproError("--sft-steps, --grpo-steps and --threads must be >= 1")
    record = run_recipe(Path(out), config)
    click.echo(f"adapter -> {Path(out) / 'adapter.gguf'} ({record['adapter']['bytes'] / 1e6:.1f} MB, sha256 "
               f"{record['adapter_sha256']}) in {record['total_minutes']:.1f} min")


@rl.command("export-gguf")
@click.argument("adapter", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The GGUF adapter file to write.")
@click.option("--dtype", type=click.Choice(["f32", "f16"]), default="f32", show_default=True)
def export_gguf(adapter: str, out: str, dtype: str) -> None:
    """Write a LoRA adapter (`opro rl train --lora-rank`) as a GGUF adapter for the llamacpp: backend."""
    from opro.extras import require

    require("gguf", "safetensors", extra="rl", feature="opro rl export-gguf")
    from opro.rl.lora import export_gguf as write

    written = write(Path(adapter.removeprefix("hf:")), Path(out), dtype)
    click.echo(f"{written['tensors']} tensors, rank {written['rank']}, {written['bytes'] / 1e6:.1f} MB -> {out}  "
               f"(use it with --set optimizer.lora=\"{out}\" on the adapter's base GGUF)")


@rl.command()
@click.option("--model", default="smollm2", show_default=True, help="A GGUF: smollm2 (the default) or a path.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output HF model directory.")
def convert(model: str, out: str) -> None:
    """Save a GGUF model (dequantized) as a normal Hugging Face model directory."""
    from opro.results import prepare_output
    from opro.rl.convert import convert_gguf

    prepare_output(Path(out), "--out", folder=True, create=False)
    click.echo(f"saved -> {convert_gguf(model, Path(out))}  (use it with --model hf:{out})")


@rl.command("eval")
@click.option("--base", required=True, help="The base optimizer, e.g. hf:DIR.")
@click.option("--tuned", required=True, help="The tuned optimizer, e.g. hf:DIR.")
@click.option("--task", default="tsp", show_default=True, help="Preset(s), e.g. tsp or tsp,linreg.")
@click.option("--sizes", default="5-10", show_default=True, help="TSP node counts of the held-out instances.")
@click.option("--prompts", type=int, default=8, show_default=True, help="Held-out meta-prompts per task.")
@click.option("--samples", type=int, default=4, show_default=True, help="Proposals per meta-prompt.")
@click.option("--max-tokens", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=1000, show_default=True, help="Held-out instance seeds start here.")
@click.option("--runs", type=int, default=0, show_default=True, help="Also full OPRO runs per model and task.")
@click.option("--steps", type=int, default=5, show_default=True, help="Steps of each OPRO run.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default results/rl-eval-TIME).")
def evaluate(base: str, tuned: str, task: str, sizes: str, prompts: int, samples: int, max_tokens: int, seed: int,
             runs: int, steps: int, out: str | None) -> None:
    """Base against tuned on held-out meta-prompts: valid and improvement rates, mean reward; table and plot."""
    import time

    from opro.results import prepare_output
    from opro.rl.evaluate import evaluate as run_eval
    from opro.rl.evaluate import to_markdown

    if min(prompts, samples, max_tokens) < 1 or runs < 0:
        raise OproError("--prompts, --samples and --max-tokens must be >= 1, --runs >= 0")
    target = Path(out) if out else Path("results") / ("rl-eval-" + time.strftime("%Y%m%d-%H%M%S"))
    prepare_output(target, "--out", folder=True, create=False)
    reports = run_eval({"base": base, "tuned": tuned}, task, target, prompts, samples, seed, _sizes(sizes),
                       max_tokens, runs=runs, steps=steps)
    click.echo(to_markdown(reports))
    click.echo(f"table and plot in {target}")

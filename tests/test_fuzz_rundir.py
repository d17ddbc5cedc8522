"""Property: whatever happened to a run directory, `opro run --resume`, `opro compare` and `opro report` exit 0,
or exit 2 with exactly one line; never a traceback; and a failed command changes no file, while a resume that
succeeds only cuts a log back to the length state.json records (and writes summary.json afresh).

One real run (the embedded model, one thread) is made once; hypothesis then corrupts copies of it: files cut,
extended, NUL-filled, garbled or deleted, JSON values replaced by values of the wrong type.
"""

from __future__ import annotations

import collections
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opro.results import LOG_FILES
from tests.rundir_tools import opro, snapshot
from tests.tiers import examples

FILES = ("config.json", "state.json", "summary.json", *LOG_FILES)
WRONG_VALUES = (None, "x", "", -1, 0, 1.5, True, [], {}, [1, 2], {"a": 1}, math.inf, -math.inf, 10**20)
OUTCOMES: collections.Counter = collections.Counter()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, default_model) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    done = subprocess.run(
        [sys.executable, "-m", "opro.cli", "run", "--task", "linreg", "--steps", "1", "--threads", "1", "--max-tokens",
         "40", "--set", "loop.candidates_per_step=2", "--set", "loop.resample_rounds=0", "--results", str(root),
         "--run-id", "base", "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    path = root / "linreg" / "base"
    record = json.loads((path / "config.json").read_text())
    # A resume of a valid copy with --steps 1 has no step to sample and must not load a model: if it did, this
    # missing GGUF would fail it.
    record["config"]["optimizer"]["spec"] = "llamacpp:/no/such/model.gguf"
    (path / "config.json").write_text(json.dumps(record, indent=2))
    yield path
    print(f"\nfuzzed run directories: {dict(OUTCOMES)}")


def json_paths(value, prefix=()):
    """Every path to a value inside a JSON document (dict keys and list indices), the document itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            yield from json_paths(item, (*prefix, i))


@st.composite
def corruptions(draw):
    kind = draw(st.sampled_from(["truncate", "extend", "nul", "garble", "delete", "json", "json", "json"]))
    name = draw(st.sampled_from(FILES if kind != "json" else ("config.json", "state.json", "summary.json")))
    return kind, name, draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6)), draw(st.binary(min_size=1,
                                                                                                   max_size=12))


def corrupt(path: Path, kind: str, name: str, at: int, other: int, data: bytes) -> None:
    file = path / name
    if not file.exists():
        return
    content = file.read_bytes()
    start = at % (len(content) + 1)
    if kind == "truncate":
        file.write_bytes(content[:start])
    elif kind == "extend":
        file.write_bytes(content + data)
    elif kind == "nul":
        file.write_bytes(content[:start] + b"\0" * len(data) + content[start + len(data):])
    elif kind == "garble":
        file.write_bytes(content[:start] + data + content[start + len(data):])
    elif kind == "delete":
        file.unlink()
    else:
        try:
            document = json.loads(content)
        except ValueError:
            return
        paths = list(json_paths(document))
        where = paths[at % len(paths)]
        value = WRONG_VALUES[other % len(WRONG_VALUES)]
        if not where:
            document = value
        else:
            parent = document
            for key in where[:-1]:
                parent = parent[key]
            parent[where[-1]] = value
        file.write_text(json.dumps(document))


def check_outcome(done, command: str) -> None:
    assert done.code in (0, 2), (command, done)
    if done.code == 2:
        assert len(done.lines) == 1 and done.lines[0].startswith("opro: error:"), (command, done)
    assert "Traceback" not in done.stdout + done.stderr


@settings(max_examples=examples(70), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(changes=st.lists(corruptions(), min_size=1, max_size=2), report=st.integers(0, 5))
@example(changes=[("extend", "steps.csv", 0, 0, b"\x80")], report=0)  # a byte that is not UTF-8 after the header
def test_corrupted_run_directories_fail_cleanly_and_lose_nothing(real_run, changes, report):
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "run"
        shutil.copytree(real_run, copy)
        for change in changes:
            corrupt(copy, *change)
        before = snapshot(copy)
        try:
            recorded = json.loads(before.get("state.json", b"{}"))["lengths"]
        except (ValueError, KeyError, TypeError):
            recorded = {}

        done = opro("run", "--resume", str(copy), "--steps", "1", "--quiet")
        check_outcome(done, "resume")
        OUTCOMES[f"resume exit {done.code}"] += 1
        after = snapshot(copy)
        if done.code != 0:
            assert after == before
        for name, old in before.items():
            new = after[name]
            if name == "summary.json" and done.code == 0:  # a resume computes it afresh from the logs
                assert json.loads(new)["steps_run"] == 1
            elif len(new) < len(old) or new.count(b"\0") > old.count(b"\0"):
                assert name in LOG_FILES and new == old[:recorded[name]], name

        compared = opro("compare", str(copy), "--out", str(Path(scratch) / "cmp"), "--no-plot")
        check_outcome(compared, "compare")
        OUTCOMES[f"compare exit {compared.code}"] += 1
        if report == 0:  # the report draws every plot: only some of the cases
            reported = opro("report", str(copy), "--out", str(Path(scratch) / "report.html"))
            check_outcome(reported, "report")
            OUTCOMES[f"report exit {reported.code}"] += 1
        assert {k: v for k, v in snapshot(copy).items() if k != "summary.json"} == {
            k: v for k, v in after.items() if k != "summary.json"}

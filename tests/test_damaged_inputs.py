"""Inputs that used to end in a traceback now end in one line and exit 2, checked where they are read: a base
URL that is not one (checked when the config is built, and in $OPENAI_BASE_URL), and a damaged sweep.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opro.sweep import SweepDriver, read_sweep
from tests.cli_inprocess import invoke


@pytest.mark.parametrize(("url", "reason"), [
    ("http://[::1/v1", "Invalid IPv6 URL"),
    ("http://127.0.0.1:99999/v1", "Port out of range 0-65535"),
    ("http://127.0.0.1:port/v1", "Port could not be cast to integer value as 'port'"),
    ("ftp://example.org/v1", "expected http(s)://HOST[:PORT]/PATH"),
    ("127.0.0.1:8080", "expected http(s)://HOST[:PORT]/PATH"),
])
def test_a_bad_base_url_is_refused_when_the_config_is_built(url, reason, tmp_path):
    outcome = invoke(["run", "--optimizer", "openai:m", "--base-url", url, "--dry-run"], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert outcome.stderr.strip() == f"opro: error: optimizer.base_url {url!r} is not a valid URL: {reason}"


def test_a_bad_base_url_from_the_environment_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://[::1/v1")
    outcome = invoke(["run", "--optimizer", "openai:m", "--steps", "1", "--results", str(tmp_path / "r")], tmp_path)
    assert outcome.refused_in_one_line, outcome.escaped or outcome.stderr
    assert "OPENAI_BASE_URL 'http://[::1/v1' is not a valid URL" in outcome.stderr
    assert not (tmp_path / "r").exists()


def test_credentials_in_a_bad_url_are_not_repeated(tmp_path):
    outcome = invoke(["run", "--optimizer", "openai:m", "--base-url", "http://me:SECRET@[::1/v1", "--dry-run"],
                     tmp_path)
    assert outcome.refused_in_one_line and "SECRET" not in outcome.stderr


SWEEP = """results = "{results}"
task = "linreg"
[set]
"loop.steps" = 1
[axes]
seed = [0, 1]
"""


@pytest.fixture
def sweep(tmp_path) -> tuple[Path, Path]:
    """A planned sweep (sweep.json written, no cell run) and its parent folder."""
    path = tmp_path / "grid.toml"
    path.write_text(SWEEP.format(results=tmp_path / "results"))
    driver = SweepDriver(read_sweep(path))
    driver.open()
    driver.close()
    return path, driver.parent


def cell(**changes) -> dict:
    return {"id": "seed=0", "values": {"seed": 0}, "overrides": {"seed": 0}, "task": "linreg", "steps": 1,
            "state": "pending", "last_step": -1, **changes}


DAMAGE = {
    "a list": lambda record, text: "[]",
    "an empty object": lambda record, text: "{}",
    "cells of the wrong type": lambda record, text: json.dumps({**record, "cells": {"seed=0": {}}}),
    "a cell that is not an object": lambda record, text: json.dumps({**record, "cells": ["seed=0"]}),
    "a cell without id": lambda record, text: json.dumps({**record, "cells": [
        {k: v for k, v in cell().items() if k != "id"}]}),
    "a cell without overrides": lambda record, text: json.dumps({**record, "cells": [
        {k: v for k, v in cell().items() if k != "overrides"}]}),
    "a truncated file": lambda record, text: text[:len(text) // 2],
    "an unknown cell state": lambda record, text: json.dumps({**record, "cells": [cell(state="sleeping")]}),
    "steps that are not a number": lambda record, text: json.dumps({**record, "cells": [cell(steps="two")]}),
    "an id that is a path": lambda record, text: json.dumps({**record, "cells": [cell(id="../../etc")]}),
}


@pytest.mark.parametrize("shape", DAMAGE)
def test_a_damaged_sweep_json_is_one_line_for_status_and_rerun(shape, sweep, tmp_path):
    path, parent = sweep
    text = (parent / "sweep.json").read_text()
    (parent / "sweep.json").write_text(DAMAGE[shape](json.loads(text), text))
    for args in (["sweep", str(path), "--status"], ["sweep", str(path)]):
        outcome = invoke(args, tmp_path)
        assert outcome.refused_in_one_line, (shape, outcome.escaped or outcome.stderr)
        assert "sweep.json in" in outcome.stderr
    assert sorted(p.name for p in parent.iterdir()) == [".lock", "sweep.json"]  # no cell was started

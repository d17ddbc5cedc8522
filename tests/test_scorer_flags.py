"""Each role's server from the command line: --base-url serves the optimizer and the scorer unless
--scorer-base-url is given, and a dry run names the server each would reach; `opro eval` takes run's flags."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli_inprocess import invoke

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "mine"
    shutil.copytree(REPO / "examples" / "custom_prompt", folder)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return folder


@pytest.mark.parametrize(("flags", "reached"), [
    (["--base-url", "http://127.0.0.1:8000/v1"], "openai:Qwen at http://127.0.0.1:8000/v1, key none"),
    (["--base-url", "http://127.0.0.1:8000/v1", "--scorer-base-url", "http://127.0.0.1:9000/v1"],
     "openai:Qwen at http://127.0.0.1:9000/v1, key none"),
    (["--scorer-base-url", "http://127.0.0.1:9000/v1", "--scorer-api-key", "sk-scorer"],
     "openai:Qwen at http://127.0.0.1:9000/v1, key present"),
    ([], "openai:Qwen at https://api.openai.com/v1, key MISSING"),
])
def test_a_dry_run_names_the_scorers_server(project, flags, reached, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    outcome = invoke(["run", "--task", "capitals.toml", "--scorer", "openai:Qwen", *flags, "--dry-run"], project)
    assert outcome.code == 0, outcome
    scorer_line = next(line for line in outcome.stdout.splitlines() if line.strip().startswith("scorer "))
    assert reached in scorer_line and "sk-scorer" not in outcome.stdout


def test_a_scorer_url_needs_a_scorer(project):
    outcome = invoke(["run", "--task", "capitals.toml", "--scorer-base-url", "http://127.0.0.1:9000/v1",
                      "--dry-run"], project)
    assert outcome.refused_in_one_line and "--scorer SPEC" in outcome.stderr


def test_eval_takes_the_server_flags_of_run(project):
    outcome = invoke(["eval", "--task", "capitals.toml", "--scorer", "openai:Qwen", "--base-url",
                      "http://127.0.0.1:8000/v1", "--api-key", "sk-test", "--concurrency", "2", "--no-cache",
                      "--limit", "2", "--dry-run"], project)
    assert outcome.code == 0, outcome
    assert "(2 examples), scorer openai:Qwen at http://127.0.0.1:8000/v1" in outcome.stdout
    assert "sk-test" not in outcome.stdout and not (project / "results").exists()

"""Each role's server from the command line: --base-url serves the optimizer and the scorer unless
--scorer-base-url is given, and a dry run names the server each would reach; `opro eval` takes run's flags;
a run or its evaluation reaches a server that moved to another address."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_inprocess import invoke
from tests.fake_openai import FakeOpenAI

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


def capital_or_instruction(body: dict, headers: dict) -> tuple[int, str]:
    """The optimizer is asked for an instruction in brackets; the scorer for a capital city."""
    prompt = body["messages"][-1]["content"]
    return 200, "[Name the capital city.]" if "<INS>" in prompt or "[" in prompt[-400:] else "Paris"


def test_eval_of_a_run_reaches_its_scorer_at_a_new_address(project):
    """A run scored through a local server is evaluated after the server came back on another port: `--run`
    takes the scorer's new connection settings (and only those), and the evaluation records them."""
    with FakeOpenAI(capital_or_instruction) as before:
        made = invoke(["run", "--task", "capitals.toml", "--scorer", "openai:Qwen", "--base-url", before.url,
                       "--set", "optimizer.spec=openai:Qwen", "--set", "loop.steps=1", "--run-id", "r"], project)
        assert made.code == 0, made
    run = next((project / "results").glob("*/r"))

    with FakeOpenAI(capital_or_instruction) as after:
        outcome = invoke(["eval", "--run", str(run), "--set", f"scorer.base_url={after.url}",
                          "--set", "scorer.concurrency=2", "--limit", "2"], project)
        assert outcome.code == 0, outcome
        assert len(after.requests) == 2  # the run's best instruction on two test questions, at the new address
    recorded = json.loads((run / "eval-test" / "eval.json").read_text())["scorer"]
    assert (recorded["spec"], recorded["base_url"], recorded["concurrency"]) == ("openai:Qwen", after.url, 2)


@pytest.mark.parametrize("setting", ["loop.steps=2", "problem.scorer_max_tokens=8", "scorer.spec=openai:Other"])
def test_eval_of_a_run_keeps_what_the_run_measured(project, setting):
    outcome = invoke(["eval", "--run", str(project), "--set", setting, "--dry-run"], project)
    assert outcome.refused_in_one_line and "--set can change only the scorer's connection" in outcome.stderr


def run_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


@pytest.fixture
def stopped_run(project) -> Path:
    """A one-step run of capitals.toml whose optimizer and scorer were reached through a server now gone."""
    with FakeOpenAI(capital_or_instruction) as before:
        made = invoke(["run", "--task", "capitals.toml", "--scorer", "openai:Qwen", "--base-url", before.url,
                       "--set", "optimizer.spec=openai:Qwen", "--set", "loop.steps=1", "--run-id", "r"], project)
        assert made.code == 0, made
    return next((project / "results").glob("*/r"))


def test_a_resumed_run_reaches_its_server_at_a_new_address(project, stopped_run):
    """The run is resumed after its server came back on another port: --base-url (and `--set scorer.KEY=...`)
    may change where the LLMs are reached, and config.json records the new address."""
    with FakeOpenAI(capital_or_instruction) as after:
        outcome = invoke(["run", "--resume", str(stopped_run), "--steps", "2", "--base-url", after.url,
                          "--set", "scorer.concurrency=2"], project)
        assert outcome.code == 0, outcome
        assert after.requests  # step 2's proposals and their scores, at the new address
    config = run_config(stopped_run)
    assert config["optimizer"]["base_url"] == config["scorer"]["base_url"] == after.url
    assert (config["loop"]["steps"], config["scorer"]["concurrency"]) == (2, 2)
    assert config["optimizer"]["spec"] == config["scorer"]["spec"] == "openai:Qwen"
    assert json.loads((stopped_run / "state.json").read_text())["last_step"] == 2


def test_the_python_api_resumes_at_a_new_address_too(project, stopped_run, monkeypatch):
    import opro

    monkeypatch.chdir(project)  # the task's data path is relative to it, as for the command line
    with FakeOpenAI(capital_or_instruction) as after:
        resumed = opro.resume(stopped_run, steps=2, llm__base_url=after.url)
    assert resumed.steps["step"].max() == 2 and run_config(stopped_run)["scorer"]["base_url"] == after.url


@pytest.mark.parametrize("setting", ["scorer.spec=openai:Other", "optimizer.n_ctx=512",
                                     "problem.scorer_max_tokens=8"])
def test_a_resume_keeps_which_model_and_task_the_run_measured(project, stopped_run, setting):
    """Anything but the connection is refused in one line, and the run is left as it was."""
    config_before = (stopped_run / "config.json").read_bytes()
    outcome = invoke(["run", "--resume", str(stopped_run), "--steps", "2", "--set", setting], project)
    assert outcome.refused_in_one_line and "the LLMs' connection" in outcome.stderr
    assert (stopped_run / "config.json").read_bytes() == config_before

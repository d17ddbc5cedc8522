"""Experiment tracking: runs, groups and sweeps mirrored to a real local MLflow store (SQLite, read back with
MlflowClient) and to W&B offline run files (read back with W&B's record schema); a tracker that is down or
misconfigured is one warning and the run completes. The runs are the embedded model's, tiny."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_inprocess import invoke
from tests.tiers import require_extra

require_extra("mlflow")
require_extra("wandb")

TINY = ["--n", "5", "--candidates", "2", "--max-tokens", "40", "--threads", "1", "--no-cache", "--quiet"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A local MLflow store: `MLFLOW_TRACKING_URI` names a SQLite file in the test's folder."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def artifacts(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


@pytest.mark.slow
def test_a_run_is_an_mlflow_run_and_its_resume_continues_it(tmp_path, store, default_model):
    started = invoke(["run", "--task", "tsp", "--steps", "1", *TINY, "--results", "out", "--run-id", "r1",
                      "--track", "mlflow"], tmp_path)
    assert started.code == 0, started.stderr + str(started.escaped)
    run_dir = tmp_path / "out" / "tsp" / "r1"
    record = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    run = store.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "r1"
    assert run.data.params["loop.steps"] == "1" and run.data.params["optimizer.spec"] == "llamacpp:smollm2-opro"
    assert {run.data.tags[k] for k in ("task", "method", "seed")} == {"tsp", "opro", "0"}
    assert "mlflow.source.git.commit" in run.data.tags  # the checkout's revision, as config.json records it

    resumed = invoke(["run", "--resume", str(run_dir), "--steps", "2", "--quiet"], tmp_path)  # no --track again
    assert resumed.code == 0, resumed.stderr + str(resumed.escaped)
    assert store.search_runs([record["experiment_id"]]).__len__() == 1  # the same MLflow run, continued
    run = store.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["resumed.loop.steps"] == "2"
    steps = (run_dir / "steps.csv").read_text().splitlines()[1:]
    best = [float(line.split(",")[1]) for line in steps]
    assert history(store, record["run_id"], "best_so_far") == list(enumerate(best))  # every step, once
    for key in ("step_mean", "valid_rate", "tokens", "cost_usd", "n_valid"):
        assert [step for step, _ in history(store, record["run_id"], key)] == [0, 1, 2]
    assert {"run/steps.csv", "run/candidates.csv", "run/summary.json", "run/config.json"} <= artifacts(
        store, record["run_id"], "run")
    assert artifacts(store, record["run_id"], "figures") == {"figures/curve.png"}
    assert run.data.metrics["summary.steps_run"] == 2


def test_a_seeds_group_is_a_parent_mlflow_run_with_a_child_per_seed(tmp_path, store, default_model):
    outcome = invoke(["run", "--task", "tsp", "--seeds", "0,1", "--steps", "0", *TINY, "--results", "out",
                      "--run-id", "g", "--track", "mlflow"], tmp_path)
    assert outcome.code == 0, outcome.stderr + str(outcome.escaped)
    parent_id = json.loads((tmp_path / "out" / "tsp" / "g" / "tracking.json").read_text())["mlflow"]["run_id"]
    parent = store.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["kind"] == "group"
    assert parent.data.params["seeds"] == "[0, 1]" and artifacts(store, parent_id, "run") == {"run/group.json"}
    children = store.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted((c.info.run_name, c.data.params["seed"]) for c in children) == [("seed0", "0"), ("seed1", "1")]
    for child in children:
        assert child.info.status == "FINISHED"
        assert [step for step, _ in history(store, child.info.run_id, "best_so_far")] == [0]


@pytest.mark.slow
def test_a_sweep_is_a_parent_run_with_a_child_per_cell_in_mlflow_and_wandb(tmp_path, default_model):
    from tests.wandb_records import of_kind, offline_runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "grid.toml"
    sweep.write_text(f'task = "tsp"\nresults = "{tmp_path / "out"}"\n[set]\n"loop.steps" = 0\n"problem.n" = 5\n'
                     f'"llm.cache" = false\n[axes]\nseed = [0, 1]\n[track]\nmlflow = {{ tracking_uri = "{uri}", '
                     f'experiment = "grid" }}\nwandb = {{ mode = "offline", dir = "{tmp_path / "wb"}" }}\n')
    done = subprocess.run([sys.executable, "-m", "opro.cli", "sweep", str(sweep), "--workers", "1", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("grid")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"grid", "seed=0", "seed=1"}
    parent = runs["grid"]
    assert parent.data.tags["kind"] == "sweep" and parent.data.params["axis.seed"] == "[0, 1]"
    assert "run/sweep.json" in artifacts(client, parent.info.run_id, "run")
    for cell in ("seed=0", "seed=1"):
        child = runs[cell]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.data.tags["cell"] == cell
        assert child.info.status == "FINISHED" and "best_so_far" in child.data.metrics
        assert "run/steps.csv" in artifacts(client, child.info.run_id, "run")
    wandb_runs = [of_kind(records, "run")[0] for records in offline_runs(tmp_path / "wb").values()]
    assert sorted((r.display_name, r.job_type, r.run_group) for r in wandb_runs) == [
        ("grid", "sweep", "grid"), ("seed=0", "run", "grid"), ("seed=1", "run", "grid")]


@pytest.mark.slow
def test_wandb_offline_logs_a_group_and_its_resume_without_an_account(tmp_path, monkeypatch, default_model):
    from tests.wandb_records import history_rows, of_kind, offline_runs

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    preset = tmp_path / "tsp-tracked.toml"  # a preset's [track] table turns tracking on
    preset.write_text((Path(__file__).parents[1] / "tasks" / "tsp.toml").read_text()
                      + f'\n[track]\nwandb = {{ mode = "offline", dir = "{tmp_path / "wb"}", project = "t" }}\n')
    outcome = invoke(["run", "--task", str(preset), "--seeds", "0,1", "--steps", "0", *TINY, "--results", "out",
                      "--run-id", "g"], tmp_path)
    assert outcome.code == 0 and outcome.stderr == "", outcome.stderr + str(outcome.escaped)
    resumed = invoke(["run", "--resume", str(tmp_path / "out" / "tsp-tracked" / "g"), "--steps", "1", "--quiet"],
                     tmp_path)
    assert resumed.code == 0, resumed.stderr + str(resumed.escaped)
    runs = offline_runs(tmp_path / "wb")  # a resumed run's offline folders, joined by their run id
    assert len(runs) == 3  # the group's parent and its two runs
    kinds = {of_kind(records, "run")[0].display_name: of_kind(records, "run")[0] for records in runs.values()}
    assert set(kinds) == {"g", "seed0", "seed1"} and {r.run_group for r in kinds.values()} == {"g"}
    for name in ("seed0", "seed1"):
        records = runs[kinds[name].run_id]
        config = {item.key: item.value_json for item in kinds[name].config.update}
        assert config["loop.steps"] == "0" and config["seed"] == name.removeprefix("seed")
        logged = history_rows(records)
        assert [row["_step"] for row in logged] == ["0", "1"] and all("best_so_far" in row for row in logged)
        assert [exit.exit_code for exit in of_kind(records, "exit")] == [0, 0]  # started, then resumed
        artifact = of_kind(records, "artifact")[-1]  # the resumed run's, at its end
        assert artifact.type == "opro-run" and {"steps.csv", "figures/curve.png"} <= {
            entry.path for entry in artifact.manifest.contents}
        assert json.loads((tmp_path / "out" / "tsp-tracked" / "g" / name / "tracking.json").read_text())[
            "wandb"]["run_id"] == kinds[name].run_id


def test_a_tracker_that_is_down_is_one_warning_and_the_run_completes(tmp_path, monkeypatch, default_model):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    outcome = invoke(["run", "--task", "tsp", "--steps", "1", *TINY, "--results", "out", "--run-id", "r",
                      "--track", "mlflow", "--track", "wandb"], tmp_path)
    assert outcome.code == 0 and outcome.escaped is None
    warnings = outcome.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(line.startswith("opro: warning:") for line in warnings)
    assert f"cannot reach the MLflow server at http://127.0.0.1:{port}" in warnings[0]
    assert "W&B online mode needs an API key" in warnings[1]
    run_dir = tmp_path / "out" / "tsp" / "r"
    assert json.loads((run_dir / "summary.json").read_text())["steps_run"] == 1  # the run is complete
    assert not (run_dir / "tracking.json").exists()


@pytest.mark.parametrize("table, message", [
    ("neptune = {}", "unknown tracker 'neptune'"),
    ("mlflow = { uri = \"x\" }", "unknown setting track.mlflow.uri"),
    ("mlflow = { tracking_uri = \"https://me:secret@example.org\" }", "holds credentials"),
    ("wandb = { mode = \"loud\" }", "track.wandb.mode must be one of"),
])
def test_a_bad_track_table_is_refused_in_one_line(tmp_path, table, message):
    preset = tmp_path / "t.toml"
    preset.write_text((Path(__file__).parents[1] / "tasks" / "tsp.toml").read_text() + f"\n[track]\n{table}\n")
    outcome = invoke(["run", "--task", str(preset), "--dry-run"], tmp_path)
    assert outcome.refused_in_one_line and message in outcome.stderr and "secret" not in outcome.stderr


def test_a_missing_extra_is_one_warning_and_the_run_completes(tmp_path, default_model):
    from tests.hidden_modules import opro_without

    done = opro_without("mlflow", ["run", "--task", "tsp", "--steps", "0", *TINY, "--results", "out", "--run-id", "r",
                                   "--track", "mlflow"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ("opro: warning: mlflow tracking is off: --track mlflow needs the 'mlflow' extra: "
                                   "pip install 'opro[mlflow]'; the run goes on (its directory is the record)")
    assert (tmp_path / "out" / "tsp" / "r" / "summary.json").is_file()


@pytest.mark.slow
def test_rl_train_reports_to_mlflow_through_trl(tmp_path, store, monkeypatch, tiny_model, tiny_linreg):
    require_extra("trl")
    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    from opro.rl.train import SFTTrainConfig, train

    train("sft", SFTTrainConfig(model=f"hf:{tiny_model}", output_dir=str(tmp_path / "sft"), task=str(tiny_linreg),
                                steps=2, logging_steps=1, report_to="mlflow"))
    runs = store.search_runs([e.experiment_id for e in store.search_experiments()])
    assert len(runs) == 1 and "loss" in runs[0].data.metrics  # TRL's own MLflow callback logged the training

"""MLflow: one MLflow run per run directory, through `MlflowClient` (no active-run global state)."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opro.tracking.base import TrackedRun, TrackerDown, public_uri

#: MLflow's run statuses for the ways a run ends.
STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
#: MLflow stores a param's value as at most this many characters.
PARAM_LENGTH = 500


class MlflowTracker:
    """Logs to the store `tracking_uri` names (else `$MLFLOW_TRACKING_URI`, else MLflow's default, a
    `mlflow.db` SQLite file in the working folder), in the experiment `experiment` (created when missing)."""

    name = "mlflow"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.client: Any = None
        self.run_id = ""

    def open(self, run: TrackedRun) -> dict[str, Any]:
        stored = run.stored or {}
        given = absolute_uri(self.options.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
                             or "sqlite:///mlflow.db")
        # a resume reopens the store it started in (given again, credentials and all, when it is the same one)
        uri = stored["tracking_uri"] if stored.get("tracking_uri") not in (None, public_uri(given)) else given
        check_reachable(uri)
        from mlflow import MlflowClient

        for noisy in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." on every new store
            logging.getLogger(noisy).setLevel(logging.WARNING)

        self.client = MlflowClient(tracking_uri=uri)
        if stored.get("run_id"):
            self.run_id = stored["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            experiment_id = stored.get("experiment_id")
            logged = self.client.get_run(self.run_id).data.params
            self.client.set_tag(self.run_id, "resumed", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            for key, value in run.params.items():  # a param never changes in MLflow: a resume's new limits are tags
                if key in logged and logged[key] != str(value)[:PARAM_LENGTH]:
                    self.client.set_tag(self.run_id, f"resumed.{key}", str(value)[:PARAM_LENGTH])
        else:
            name = self.options.get("experiment", "opro")
            found = self.client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else self.client.create_experiment(name)
            tags = {**run.tags, **({"mlflow.source.git.commit": run.tags["git_commit"]} if "git_commit" in run.tags
                                   else {})}
            if run.parent and run.parent.get("run_id"):
                tags["mlflow.parentRunId"] = run.parent["run_id"]
            self.run_id = self.client.create_run(experiment_id, run_name=run.name, tags=tags).info.run_id
            self._log_params(run.params)
        return {"run_id": self.run_id, "experiment_id": experiment_id, "tracking_uri": public_uri(uri)}

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:PARAM_LENGTH]) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def log_summary(self, values: dict[str, float]) -> None:
        self.log_metrics(int(values.get("steps_run", 0)), {f"summary.{k}": v for k, v in values.items()})

    def log_files(self, folder: Path, figures: list[Path]) -> None:
        self.client.log_artifacts(self.run_id, str(folder), "run")
        for figure in figures:
            self.client.log_artifact(self.run_id, str(figure), "figures")

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, STATUS[status])


def absolute_uri(uri: str) -> str:
    """A local store's URI made absolute (`sqlite:///mlflow.db` means the working folder's file only now), so
    that a resume from another folder finds the same store; a plain path becomes a `file:` URI."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" not in uri and not uri.startswith(("databricks", "file:")):
        return Path(uri).resolve().as_uri()
    return uri


def check_reachable(uri: str, timeout: float = 3.0) -> None:
    """An HTTP(S) tracking server must accept a connection within `timeout` seconds; otherwise TrackerDown
    at once (MLflow's own client retries for minutes)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout).close()
    except OSError as error:
        raise TrackerDown(f"cannot reach the MLflow server at {public_uri(uri)} "
                          f"({error.strerror or type(error).__name__})") from None

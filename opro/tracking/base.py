"""The tracker seam: what a tracker backend does, and the settings a preset or sweep file gives it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from opro.errors import OproError

#: The backends, their extras, and the settings each takes in `[track] NAME = {...}`.
BACKENDS: dict[str, tuple[str, ...]] = {
    "mlflow": ("tracking_uri", "experiment"),
    "wandb": ("project", "entity", "mode", "dir"),
}
WANDB_MODES = ("online", "offline", "disabled")


class TrackerDown(Exception):
    """A tracker that cannot be used (unreachable, misconfigured, not installed): a warning, never a failed run."""


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker run mirrors: a run directory, or the parent folder of a group or sweep."""

    name: str
    """The tracker run's name: the run directory's name (a group's or sweep's for a parent)."""
    kind: str
    """"run", "group" (--seeds / --instances) or "sweep"."""
    params: dict[str, Any] = field(default_factory=dict)
    """Flat settings (`loop.steps`, `optimizer.spec`, ...) logged as params (W&B: config)."""
    tags: dict[str, str] = field(default_factory=dict)
    """task, problem, method, models, seed, git revision."""
    stored: dict[str, Any] | None = None
    """This backend's entry of tracking.json when the tracker run exists already (a resume): it is reopened."""
    parent: dict[str, Any] | None = None
    """The parent folder's tracking.json entry for a run of a group or sweep (its tracker run is the parent)."""


class Tracker(Protocol):
    """One tracker run. Any exception it raises turns tracking to that backend off, with one warning."""

    name: str

    def open(self, run: TrackedRun) -> dict[str, Any]:
        """Create the tracker run (or reopen `run.stored`'s); returns what tracking.json keeps to reopen it.
        Raises TrackerDown when the backend cannot be used."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One step's metrics (see StepMetrics)."""

    def log_summary(self, values: dict[str, float]) -> None:
        """summary.json's numbers, once the run stops."""

    def log_files(self, folder: Path, figures: list[Path]) -> None:
        """Every file of `folder` (the run directory) and the figures drawn from it, as artifacts."""

    def close(self, status: str) -> None:
        """End the tracker run: "finished", "failed" or "killed"."""


def check_track(table: Any, label: str) -> dict[str, dict[str, Any]]:
    """A `[track]` table (`mlflow = {...}`, `wandb = {...}`) checked: known backends and settings, string
    values; one-line OproError otherwise."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise OproError(f"{label}: track must be a table ([track] mlflow = {{...}})")
    checked = {}
    for backend, options in table.items():
        if backend not in BACKENDS:
            raise OproError(f"{label}: unknown tracker {backend!r} in [track]; known: {', '.join(BACKENDS)}")
        if options is True or options == {}:
            options = {}
        if not isinstance(options, dict):
            raise OproError(f"{label}: track.{backend} must be a table of settings, e.g. {backend} = {{}}")
        for key, value in options.items():
            if key not in BACKENDS[backend]:
                raise OproError(f"{label}: unknown setting track.{backend}.{key}; known: "
                                f"{', '.join(BACKENDS[backend])}")
            if not isinstance(value, str):
                raise OproError(f"{label}: track.{backend}.{key} must be a string, got {value!r}")
        if options.get("mode", "online") not in WANDB_MODES:
            raise OproError(f"{label}: track.wandb.mode must be one of {', '.join(WANDB_MODES)}")
        uri = options.get("tracking_uri", "")
        if urlsplit(uri).password or urlsplit(uri).username:
            raise OproError(f"{label}: track.mlflow.tracking_uri holds credentials; set MLFLOW_TRACKING_USERNAME "
                            "and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) instead")
        checked[backend] = dict(options)
    return checked


def public_uri(uri: str) -> str:
    """`uri` without a user name, password or query (which may hold a token): what may be written to a file."""
    parts = urlsplit(uri)
    if not parts.netloc:  # a local store (sqlite:////abs/path): kept as written
        return uri.split("?")[0]
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc, query=""))

"""Weights & Biases: one W&B run per run directory; a group's or sweep's runs share its W&B `group`."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from opro.tracking.base import TrackedRun, TrackerDown

#: W&B exit codes for the ways a run ends.
EXIT_CODE = {"finished": 0, "failed": 1, "killed": 255}
#: The run's tags that become W&B tags (`task=tsp`); all of them are in its config under "run".
TAGS = ("kind", "task", "problem", "method", "optimizer", "scorer", "seed")


class WandbTracker:
    """Logs to the W&B project `project` (default "opro") of `entity`, in `mode` (online, offline or
    disabled; default `$WANDB_MODE`, else online). Offline runs are written under `dir` (default: the working
    folder) as `wandb/offline-run-*`, and need no account; `wandb sync` uploads them later."""

    name = "wandb"

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.run: Any = None

    def open(self, run: TrackedRun) -> dict[str, Any]:
        stored = run.stored or {}
        options = {**self.options, **{k: v for k, v in stored.items() if k != "run_id"}}
        mode = options.get("mode") or os.environ.get("WANDB_MODE") or "online"
        check_key(mode)
        folder = Path(options.get("dir") or ".").resolve()
        folder.mkdir(parents=True, exist_ok=True)
        # W&B otherwise advertises its LLM-tracing product on stderr once it sees the openai package loaded
        os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
        import wandb

        parent = run.parent or {}
        group = parent.get("group") or (run.name if run.kind != "run" else None)
        self.run = wandb.init(
            project=options.get("project", "opro"), entity=options.get("entity"), mode=mode, dir=str(folder),
            id=stored.get("run_id"), resume="allow" if stored.get("run_id") else None, name=run.name,
            group=group, job_type=run.kind,
            tags=[f"{k}={run.tags[k]}"[:64] for k in TAGS if k in run.tags], config={**run.params, "run": run.tags},
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", init_timeout=30, x_disable_stats=True,
                                    save_code=False, x_save_requirements=False),
        )
        if stored.get("run_id"):  # a resume's new limits (more steps, a larger budget)
            self.run.config.update(run.params, allow_val_change=True)
        return {"run_id": self.run.id, "project": options.get("project", "opro"), "entity": options.get("entity"),
                "mode": mode, "dir": str(folder), "group": group}

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def log_summary(self, values: dict[str, float]) -> None:
        self.run.summary.update(values)

    def log_files(self, folder: Path, figures: list[Path]) -> None:
        import wandb

        artifact = wandb.Artifact(f"run-{self.run.id}", type="opro-run")
        for path in sorted(folder.rglob("*")):  # file by file: add_dir prints a line of its own
            if path.is_file():
                artifact.add_file(str(path), name=path.relative_to(folder).as_posix())
        for figure in figures:
            artifact.add_file(str(figure), name=f"figures/{figure.name}")
        self.run.log_artifact(artifact)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=EXIT_CODE[status])


def check_key(mode: str) -> None:
    """TrackerDown when W&B would have to ask for a key: online mode with none configured."""
    if mode == "online" and not has_api_key():
        raise TrackerDown('W&B online mode needs an API key (WANDB_API_KEY or `wandb login`); '
                          'mode = "offline" (or WANDB_MODE=offline) logs without an account')


def has_api_key() -> bool:
    """Whether W&B finds a key without asking: `$WANDB_API_KEY` or a netrc entry for its host. The key is
    never read into anything opro keeps."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False

"""Helpers for run-directory tests: make a real run without a model, run the CLI in-process, snapshot files."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from opro.cli import main
from opro.config import build_config
from opro.results import LOCK_FILE
from opro.runner import start_run
from tests.doubles import ScriptedLLM

#: Linear-regression proposals: valid pairs, a duplicate and one that does not parse.
PROPOSALS = ["[16, 13]", "w, b = [17, 12]", "no pair here", "[16, 13]"]


def make_run(root: Path, task: str = "linreg", steps: int = 2, **settings: object) -> Path:
    """A real run directory of `steps` steps written by the loop, with a scripted optimizer (no model)."""
    overrides = {"loop.steps": steps, "loop.candidates_per_step": 2, "loop.resample_rounds": 1,
                 "loop.stop_at_optimum": False, "results_root": str(root), "optimizer.threads": 1, **settings}
    run, _ = start_run(build_config(task, overrides), "run", optimizer=ScriptedLLM(PROPOSALS))
    return run.path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return (self.stdout + self.stderr).strip().splitlines()


def opro(*args: str) -> Outcome:
    """`opro ARGS` in this process, through the real entry point (user errors: one line, exit 2). Any other
    exception escapes, so that a traceback fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, by relative path; lock files (opro.results.LOCK_FILE) hold a pid, not data."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}

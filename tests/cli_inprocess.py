"""Run the `opro` entry point in-process (click's CliRunner isolation), as a user's shell would see it."""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from opro.cli import main


@dataclass
class Outcome:
    """What a user sees: the exit code, stdout, stderr, and the traceback of an exception that escaped."""

    code: int | None
    stdout: str
    stderr: str
    escaped: str | None

    @property
    def refused_in_one_line(self) -> bool:
        lines = self.stderr.strip().splitlines()
        return self.code == 2 and len(lines) == 1 and lines[0].startswith("opro: error:")


def invoke(args: list[str], cwd: Path, stdin: str | None = None) -> Outcome:
    """`opro ARGS` run in `cwd`."""
    before = os.getcwd()
    os.chdir(cwd)
    escaped = None
    try:
        with CliRunner().isolation(input=stdin) as (out, err, _):
            try:
                main(list(args))
                code: int | None = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except Exception:  # an escaped exception (a traceback for the user) is what the tests look for
                code, escaped = None, traceback.format_exc()
            stdout, stderr = out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
    finally:
        os.chdir(before)
    return Outcome(code, stdout, stderr, escaped)

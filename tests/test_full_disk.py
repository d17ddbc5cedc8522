"""A full disk is one line and exit 2, never a traceback; what was written stays resumable, and a start that
failed leaves nothing behind, so the same command can run again once there is space.

The disk is a real one: a small tmpfs mounted for the test (root only; skipped elsewhere), and /dev/full.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from opro.config import build_config
from opro.errors import OproError
from opro.llm import Completion, Request
from opro.llm.cache import CachedLLM
from opro.runner import open_run, run_group, start_run
from tests.rundir_tools import PROPOSALS, make_run, opro
from tests.scripted_llm import ScriptedLLM


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs at tmp_path/disk, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A file that takes all of `disk` but about `leave` bytes."""
    filler = disk / "filler"
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(handle, b"\0" * 4096)
        os.ftruncate(handle, max(0, os.fstat(handle).st_size - leave))
    finally:
        os.close(handle)
    return filler


def linreg(root: Path, steps: int):
    return build_config("linreg", {"loop.steps": steps, "loop.candidates_per_step": 2, "loop.stop_at_optimum": False,
                                   "results_root": str(root), "optimizer.threads": 1})


def test_a_run_that_fills_the_disk_mid_step_stops_in_one_line_and_resumes(small_disk):
    fill(small_disk, leave=40_000)  # room to start and for some steps, not for 1000
    with pytest.raises(OproError, match="No space left on device") as stopped:
        start_run(linreg(small_disk, 1000), "r", optimizer=ScriptedLLM(PROPOSALS))
    assert "\n" not in str(stopped.value) and "--resume" in str(stopped.value)
    run, _, _ = open_run(small_disk / "linreg" / "r")  # what a resume checks first: state and logs agree
    assert run.state()["last_step"] >= 1
    assert not list(run.path.glob("*.tmp"))


def test_a_start_that_fails_on_a_full_disk_leaves_nothing_and_can_run_again(small_disk):
    filler = fill(small_disk, leave=0)
    with pytest.raises(OproError, match="No space left on device"):
        start_run(linreg(small_disk, 1), "r", optimizer=ScriptedLLM(PROPOSALS))
    assert not (small_disk / "linreg" / "r").exists()
    filler.unlink()
    run, summary = start_run(linreg(small_disk, 1), "r", optimizer=ScriptedLLM(PROPOSALS))
    assert summary["steps_run"] == 1 and (run.path / "summary.json").is_file()


def test_a_retry_accepts_the_leftovers_of_a_start_that_stopped_early(tmp_path):
    left = tmp_path / "linreg" / "r"
    left.mkdir(parents=True)
    (left / "config.json.tmp").write_text('{"config": {')  # what a full disk used to leave
    run, summary = start_run(linreg(tmp_path, 1), "r", optimizer=ScriptedLLM(PROPOSALS))
    assert run.path == left and summary["steps_run"] == 1
    other = tmp_path / "linreg" / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("someone's data")
    with pytest.raises(OproError, match="not an unstarted run, left as it is"):
        start_run(linreg(tmp_path, 1), "mine", optimizer=ScriptedLLM(PROPOSALS))
    assert (other / "notes.txt").read_text() == "someone's data"


def test_a_group_that_fails_on_a_full_disk_leaves_nothing(small_disk):
    fill(small_disk, leave=0)
    overrides = {"loop.steps": 1, "results_root": str(small_disk)}
    with pytest.raises(OproError, match="No space left on device"):
        run_group("linreg", overrides, [0, 1], None, "g")  # fails at group.json, before any model is built
    assert not (small_disk / "linreg" / "g").exists()


class LongAnswers:
    """Answers every request at once with 20 KB of text (a cache test needs no model)."""

    spec = "long"

    def generate(self, requests: list[Request]) -> list[Completion]:
        return [Completion(text=uuid.uuid4().hex * 1250, completion_tokens=1) for _ in requests]

    def describe(self) -> dict[str, object]:
        return {"backend": "long"}

    def close(self) -> None:
        pass


def test_an_llm_cache_on_a_full_disk_is_one_line_naming_it(small_disk):
    llm = CachedLLM(LongAnswers(), small_disk / "cache.sqlite")
    fill(small_disk, leave=0)
    requests = [Request(messages=({"role": "user", "content": str(i)},), seed=i) for i in range(40)]
    with pytest.raises(OproError) as full:
        llm.generate(requests)
    assert str(full.value).startswith(f"cannot use the LLM-call cache {small_disk / 'cache.sqlite'}: database or "
                                      "disk is full") and "--no-cache" in str(full.value)
    llm.close()


def test_a_report_to_a_full_disk_is_one_line(tmp_path):
    run = make_run(tmp_path)
    done = opro("report", str(run), "--out", "/dev/full")
    assert done.code == 2 and done.lines == ["opro: error: cannot write the report /dev/full: No space left on "
                                             "device"]


def test_printing_to_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "opro.cli", "baselines", "--task", "linreg", "--json"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["opro: error: cannot write the output: No space left on device; what was "
                                        "written before is kept"]

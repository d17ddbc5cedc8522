"""The documentation: every shell block runs, and the site builds in strict mode and renders in a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_blocks import REPO, SHIM, blocks, doc_pages, shrink
from tests.tiers import ALL, require_extra

BROWSER = next((name for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
#: Without Chromium the browser tests skip in `make test`, and fail in `make test-all` (tests/tiers.py).
needs_browser = pytest.mark.skipif(BROWSER is None and not ALL, reason="no headless Chromium")
#: The pages with a block to run or a file to write, in the site's order.
RUNNABLE = [page for page in doc_pages() if any(block.runs or block.marker == "file" for block in blocks(page))]


def test_every_block_is_found_and_every_opt_out_says_why():
    found = [block for page in doc_pages() for block in blocks(page)]
    shell = [block for block in found if block.lang in ("sh", "bash", "shell")]
    assert len(shell) >= 20 and sum(block.runs for block in shell) >= 10
    assert all(block.marker_value for block in found if block.marker), "a marker names its reason or file"
    assert [block.marker_value for block in found if block.marker == "file"] == ["methods.toml", "grid.toml"]
    untagged = [block.where for block in found if block.lang == ""]
    assert untagged == [], "every fenced block names its language (sh, toml, text, ...)"


def test_shrink_keeps_the_command_and_makes_it_small():
    assert shrink(["run", "--task", "tsp", "--n", "10", "--steps", "50"]) == [
        "run", "--task", "tsp", "--n", "10", "--steps", "1", "--candidates", "2", "--threads", "1",
        "--max-tokens", "64"]
    assert shrink(["run", "--resume", "results/tsp/x15"]) == ["run", "--resume", "results/tsp/x15"]
    assert shrink(["baselines", "--task", "linreg", "--seeds", "0-4"])[:4] == ["baselines", "--task", "linreg",
                                                                              "--seeds"]
    assert shrink(["baselines", "--seeds", "3-4"])[2] == "3"
    assert "problem.train_limit=2" in shrink(["eval", "--task", "gsm8k", "--limit", "100"])
    assert shrink(["tasks"]) == ["tasks"]
    assert "--time-limit" not in shrink(["baselines", "--task", "linreg", "--steps", "500"])  # a TSP option
    assert shrink(["sweep", "s.toml", "--dry-run"]) == ["sweep", "s.toml", "--dry-run"]
    assert shrink(["sweep", "s.toml"])[2:6] == ["--set", "loop.steps=1", "--set", "loop.candidates_per_step=2"]


@pytest.fixture(scope="module")
def reader(tmp_path_factory, default_model) -> tuple[Path, dict[str, str]]:
    """A user's folder (the repository's example folders and ../shared beside it, results/ of its own), and an
    environment whose `opro` runs every command with small settings (`tests.docs_blocks.shrink`)."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "work"
    work.mkdir()
    for name in ("tasks", "sweeps", "notebooks", "prompts"):
        (work / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "examples", work / "examples", ignore=shutil.ignore_patterns("results", "__pycache__"))
    if (REPO.parent / "shared").is_dir():
        (root / "shared").symlink_to(REPO.parent / "shared")
    shim = root / "bin" / "opro"
    shim.parent.mkdir()
    shim.write_text(SHIM.format(python=sys.executable, repo=str(REPO)))
    shim.chmod(0o755)
    path = os.pathsep.join([str(shim.parent), str(Path(sys.executable).parent), os.environ["PATH"]])
    return work, {**os.environ, "PATH": path, "OPRO_SCORE_CACHE": str(root / "scores.sqlite")}


@pytest.mark.slow
@needs_browser
@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: str(page.relative_to(REPO)))
def test_the_shell_blocks_of_each_page_run(page, reader):
    """A page's blocks run in order in one folder, the pages in the order of the site, as a reader follows
    them (Analysis and reports reports on `results/tsp/first` of Getting started); a `cd` in a block holds for
    the page's next blocks, as in a reader's terminal."""
    assert BROWSER, "no headless Chromium (Debian: apt-get install chromium)"
    work, env = reader
    failures, cwd, where = [], work, work / ".cwd"
    for block in blocks(page):
        if block.marker == "file":
            (cwd / block.marker_value).write_text(block.text)
        if not block.runs:
            continue
        script = f"{block.text}\npwd > '{where}'\n"
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=900)
        if done.returncode == 0:
            cwd = Path(where.read_text().strip())
        else:
            failures.append(f"{block.where} (exit {done.returncode}):\n{done.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
@needs_browser
def test_the_site_builds_strictly_and_renders(tmp_path):
    assert BROWSER, "no headless Chromium (Debian: apt-get install chromium)"
    require_extra("mkdocs")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    reference = site / "reference" / "analysis" / "index.html"
    assert 'id="opro.analysis.load"' in reference.read_text(), "the API reference is generated from the docstrings"
    from PIL import Image

    for page, shot in ((site / "index.html", tmp_path / "home.png"), (reference, tmp_path / "reference.png")):
        subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1280,900", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, timeout=120, check=False)
        image = Image.open(shot).convert("L")
        assert image.size == (1280, 900)
        colours = image.getcolors(maxcolors=1 << 16) or []
        assert len(colours) > 50, f"{shot.name} is blank"  # text, a header bar and code, not one colour
        assert image.resize((16, 1)).getextrema()[1] > 200, f"{shot.name}: no light page background"

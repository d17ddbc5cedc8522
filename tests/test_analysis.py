"""opro.analysis (tidy frames), opro.plots, `opro report`, the notebook, and `opro run --plot-every`.

The runs are written by the real loop with a scripted LLM (tests/analysis_runs.py): what is tested here is
reading, plotting and reporting files, not generation. `--plot-every` is also run end to end with the
embedded model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from opro import analysis, plots
from opro.compare import comparison_table
from opro.errors import OproError
from opro.report import screenshot, write_report
from tests.analysis_runs import INSTRUCTIONS, write_group, write_prompt_run, write_tree
from tests.doubles import ScriptedLLM
from tests.tiers import ALL

REPO = Path(__file__).resolve().parents[1]


def opro(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """TSP n=6 seeds 0-2 and linreg seeds 0-1 (groups as --seeds writes them) plus one prompt run."""
    root = write_tree(tmp_path_factory.mktemp("results"))
    parent = root / "gsm8k"
    parent.mkdir()
    write_prompt_run(parent)
    return root


def test_load_a_tree_into_tidy_frames(tree):
    results = analysis.load(tree)
    runs = results.runs.set_index("run")
    assert list(runs.index) == ["gsm8k/prompt-seed0", "linreg/g-linreg/seed0", "linreg/g-linreg/seed1",
                                "tsp/g-tsp/seed0", "tsp/g-tsp/seed1", "tsp/g-tsp/seed2"]
    assert runs.loc["tsp/g-tsp/seed1", ["run_group", "group", "task", "model", "seed", "n", "instance"]].tolist() == [
        "g-tsp", "tsp n=6", "tsp", "scripted:replay", 1, 6, "random-n6-s1"]
    assert runs.loc["linreg/g-linreg/seed0", "instance"] == "linreg-w15-b14-s0" and runs["finished"].all()
    for run_id in runs.index:
        path = Path(runs.loc[run_id, "path"])
        for frame, name in ((results.candidates, "candidates.csv"), (results.steps, "steps.csv")):
            expected = pd.read_csv(path / name)
            mine = frame[frame["run"] == run_id].reset_index(drop=True)
            assert len(mine) == len(expected)
            assert (mine["step"] == expected["step"]).all()
        summary = json.loads((path / "summary.json").read_text())
        assert runs.loc[run_id, "best_score"] == pytest.approx(summary["best_score"])
    cands = results.candidates
    assert cands.columns[:len(analysis.META_COLUMNS)].tolist() == list(analysis.META_COLUMNS)
    tsp = cands[cands["task"] == "tsp"]
    assert (tsp["seed"] == tsp["run"].map(runs["seed"])).all()  # the run's seed, not the sampling seed
    first = tsp[(tsp["step"] > 0) & (tsp["attempt"] == 0)]
    assert (first["sample_seed"] == first["seed"] + first["step"] * 4 + first["index"]).all()
    # best-so-far gap: 0 exactly when the run reached the optimum at that step
    steps = results.steps[results.steps["task"] == "tsp"]
    assert ((steps["gap_percent"].abs() < 1e-9) == steps["optimal"]).all()
    # a cross-run study is a groupby
    per_seed = cands.query("step > 0").groupby(["task", "seed"], observed=True)["valid"].mean()
    assert set(per_seed.index.get_level_values("task")) == {"gsm8k", "linreg", "tsp"}
    assert results.run("tsp/g-tsp/seed2").runs["seed"].tolist() == [2]


def test_quoted_instructions_with_newlines_are_read_back_exactly(tree):
    results = analysis.load(tree / "gsm8k")
    texts = results.candidates["solution"]
    for text in INSTRUCTIONS[2:4]:  # quotes and commas; a newline
        assert texts.str.startswith(text).sum() >= 2
    assert results.runs["run"].tolist() == ["prompt-seed0"]
    single = analysis.load(tree / "gsm8k" / "prompt-seed0")
    assert single.runs["run"].tolist() == ["prompt-seed0"] and len(single.candidates) == 1 + 6 * 4


def test_both_csv_engines_give_the_same_frames(tree):
    pytest.importorskip("pyarrow")
    c, arrow = analysis.load(tree, engine="c"), analysis.load(tree, engine="pyarrow")
    pd.testing.assert_frame_equal(c.candidates, arrow.candidates)
    pd.testing.assert_frame_equal(c.steps, arrow.steps)


def test_load_reads_complete_steps_only_and_mixed_versions(tmp_path):
    group = write_group(tmp_path, "tsp", "g", [0, 1], steps=3)
    before = analysis.load(tmp_path)
    killed = group / "seed0"
    (killed / "summary.json").unlink()  # killed mid-step: a half row in each log, no summary
    with open(killed / "candidates.csv", "a") as handle:
        handle.write('4,0,0,99,abc,"0,1,2')
    with open(killed / "steps.csv", "a") as handle:
        handle.write("4,500.0,4")
    old = group / "seed1" / "steps.csv"  # written by a version without the n_cached and cost_usd columns
    pd.read_csv(old).drop(columns=["n_cached", "cost_usd"]).to_csv(old, index=False)
    state = json.loads((group / "seed1" / "state.json").read_text())
    state["lengths"]["steps.csv"] = old.stat().st_size
    (group / "seed1" / "state.json").write_text(json.dumps(state))
    after = analysis.load(tmp_path)
    assert len(after.candidates) == len(before.candidates) and len(after.steps) == len(before.steps)
    assert after.steps["run"].tolist() == before.steps["run"].tolist()  # run order kept across headers
    assert after.steps.loc[after.steps["run"] == "tsp/g/seed1", "n_cached"].isna().all()
    row = after.runs.set_index("run").loc["tsp/g/seed0"]
    assert not row["finished"] and row["best_score"] == before.runs.set_index("run").loc["tsp/g/seed0", "best_score"]
    assert len(analysis.load(tmp_path, finished=True).runs) == 1


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(OproError, match="no such directory"):
        analysis.load(tmp_path / "missing")
    with pytest.raises(OproError, match="no runs"):
        analysis.load(tmp_path)
    done = opro("report", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "no runs" in done.stderr


def test_plots_return_figures_and_save_png_and_svg(tree, tmp_path):
    results = analysis.load(tree)
    tsp = results.subset(results.runs.query("task == 'tsp'")["run"])
    linreg = results.subset(results.runs.query("task == 'linreg'")["run"])
    prompt = results.subset(results.runs.query("task == 'gsm8k'")["run"])
    figures = {
        "curve.png": plots.optimization_curve(tsp, path=tmp_path / "curve.png"),
        "curve.svg": plots.optimization_curve(linreg, path=tmp_path / "curve.svg"),
        "tours.png": plots.tsp_tours(tsp, path=tmp_path / "tours.png"),
        "landscape.png": plots.linreg_landscape(linreg, path=tmp_path / "landscape.png"),
        "prompt.png": plots.prompt_accuracy(prompt, path=tmp_path / "prompt.png"),
        "methods.png": plots.method_comparison(comparison_table(results.subset(results.runs.query(
            "task != 'gsm8k'")["run"])), path=tmp_path / "methods.png"),
    }
    for name, figure in figures.items():
        assert isinstance(figure, Figure) and (tmp_path / name).stat().st_size > 5000, name
    assert (tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")
    # several TSP instances: the curve is the optimality gap; regression: the SSE on a log axis
    tsp_axes = figures["curve.png"].axes[0]
    assert tsp_axes.get_ylabel() == "optimality gap (%)" and "step" in tsp_axes.get_xlabel()
    assert {"opro scripted:replay: best so far, mean ± SE (3 runs)", "opro scripted:replay: each proposal"} <= {
        t.get_text() for t in tsp_axes.get_legend().get_texts()}
    assert figures["curve.svg"].axes[0].get_yscale() == "log"
    assert figures["curve.svg"].axes[0].get_ylabel() == "sum of squared errors (SSE)"
    # the optimal tour is the certified one recorded with the run
    best_run = tsp.runs.sort_values("gap_percent").iloc[0]
    assert f"optimal: length {best_run['optimum']:.1f}" == figures["tours.png"].axes[1].get_title()
    assert figures["prompt.png"].axes[0].get_ylabel() == "training accuracy (%)"
    quoted = figures["prompt.png"].axes[1].texts[0].get_text()
    best_text = prompt.candidates.sort_values("score").iloc[-1]["solution"]
    assert "1. [" in quoted and best_text.split()[0] in quoted
    with pytest.raises(OproError, match="must end in"):
        plots.save(figures["curve.png"], tmp_path / "curve.gif")


@pytest.fixture(scope="module")
def report_file(tree, tmp_path_factory) -> Path:
    return write_report(tree, tmp_path_factory.mktemp("report") / "report.html")


def test_report_is_one_self_contained_file(tree, report_file, tmp_path):
    text = report_file.read_text()
    assert text.count("data:image/png;base64,") == 1 + 3 * 2  # comparison bars; per setting: curve, problem plot
    assert "<script" not in text and "http://" not in text and "https://" not in text
    for heading in ("Totals", "Runs", "Comparison with baselines", "tsp n=6", "linreg w=15 b=14", "Configuration"):
        assert f">{heading}</h2>" in text
    assert "Read the question twice, &quot;carefully&quot;" in text  # model text is escaped
    assert "prompt tokens" in text and "estimated cost" in text
    done = opro("report", str(tree / "tsp" / "g-tsp" / "seed0"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tree / "tsp" / "g-tsp" / "seed0" / "report.html").is_file()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report_file, tmp_path):
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        (pytest.fail if ALL else pytest.skip)("no Chromium installed (Debian: apt-get install chromium)")
    from PIL import Image

    png = screenshot(report_file, tmp_path / "report.png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"))
    assert image.width == 1440 and 3000 < image.height < 16000  # the whole page, trimmed below the content
    assert (pixels < 128).mean() > 0.005  # text and figures were drawn, not a blank page


def test_notebook_runs_end_to_end(tree, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "notebooks" / "analysis.ipynb", as_version=4)
    out = tmp_path / "out"
    env_cell = notebook.cells[1]
    assert "parameters" in env_cell.metadata["tags"]
    env_cell.source = f"from pathlib import Path\nRESULTS = Path({str(tree)!r})\nOUT = Path({str(out)!r})\n" \
                      "OUT.mkdir(parents=True, exist_ok=True)"
    NotebookClient(notebook, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    table = pd.read_csv(out / "comparison.csv")
    assert set(zip(table["group"], table["method"], strict=True)) == {
        ("linreg w=15 b=14", "opro scripted:replay"), ("linreg w=15 b=14", "random_search"),
        ("linreg w=15 b=14", "nelder_mead"), ("tsp n=6", "opro scripted:replay"), ("tsp n=6", "nearest_neighbor"),
        ("tsp n=6", "farthest_insertion"), ("tsp n=6", "two_opt"), ("tsp n=6", "local_search")}
    assert table.query("group == 'tsp n=6' and kind == 'opro'")["runs"].item() == 3
    study = pd.read_csv(out / "study.csv")
    assert study.set_index("group")["runs"].to_dict() == {"gsm8k": 1, "linreg w=15 b=14": 2, "tsp n=6": 3}
    for name in ("curve-tsp_n6.png", "tours-tsp_n6.png", "curve-linreg_w15_b14.png", "landscape-linreg_w15_b14.png",
                 "instructions-gsm8k.png", "methods.png"):
        assert (out / name).stat().st_size > 5000, name
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the inline figure
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the tables


def test_plot_every_writes_the_curve_during_a_run(tmp_path):
    from opro.cli_progress import PlottingProgress

    seen = []

    class Watch(PlottingProgress):
        def step(self, row) -> None:
            super().step(row)
            curve = self.run_dir / "curve.png"
            seen.append((row.step, curve.is_file() and curve.stat().st_mtime_ns))

    progress = Watch(quiet=True, every=2)
    parent = tmp_path / "tsp" / "g"
    parent.mkdir(parents=True)
    from opro.config import build_config
    from opro.loop import optimize
    from opro.problems import build_problem
    from opro.results import RunDir
    from tests.analysis_runs import scripted_texts

    config = build_config("tsp", {"problem.n": 6, "loop.steps": 5, "loop.stop_at_optimum": False})
    run = RunDir.create(tmp_path, "tsp", "r", {"config": config.to_dict()})
    progress.start(run, config)
    optimize(build_problem("tsp", dict(config.problem_settings), 0), ScriptedLLM(scripted_texts("tsp", 0)),
             config.loop, 0, ("{history}", "{solution} {score}\n"), run, progress.step)
    steps = pd.read_csv(run.path / "steps.csv")
    reached = steps.loc[steps["optimal"], "step"].min() if steps["optimal"].any() else None
    expected = {0, 2, 4, 5} | ({int(reached)} if reached is not None else set())  # every 2, the last, optimum
    changed = [step for k, (step, stamp) in enumerate(seen) if stamp and (k == 0 or stamp != seen[k - 1][1])]
    assert set(changed) == expected
    assert not list(run.path.glob(".curve*"))
    with pytest.raises(OproError, match="--plot-every must be >= 1"):
        PlottingProgress(quiet=True, every=0)


@pytest.mark.slow
def test_plot_every_from_the_cli_with_the_embedded_model(default_model, tmp_path):
    done = opro("run", "--task", "linreg", "--steps", "1", "--candidates", "1", "--max-tokens", "16", "--threads", "1",
                "--set", "loop.resample_rounds=0", "--plot-every", "1", "--results", str(tmp_path), "--run-id", "r",
                "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "linreg" / "r"
    assert (run / "curve.png").stat().st_size > 5000
    assert analysis.load(run).steps["step"].tolist() == [0, 1]
    bad = opro("run", "--task", "linreg", "--plot-every", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--plot-every must be >= 1" in bad.stderr

"""`opro report RUN_OR_DIR`: one self-contained HTML file (images inlined as base64, no scripts, no server).

It holds the totals (runs, proposals, tokens, cost, wall time), the summary table of every run, the
comparison with the baselines, the plots of `opro.plots`, the top solutions (or instructions) of each
setting, and the configuration. `screenshot` renders it to a PNG in headless Chromium, when installed.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from opro import plots
from opro.analysis import Results, load
from opro.errors import OproError
from opro.redact import redact

#: The summary-table columns, in order (those a run lacks are left out).
SUMMARY_COLUMNS = ("run", "method", "seed", "instance", "best_score", "optimum", "gap_percent", "solved",
                   "steps_to_optimum", "steps_run", "stop_reason", "valid_rate", "n_unique", "prompt_tokens",
                   "completion_tokens", "cost_usd")
RUN_HEADERS = {"best_score": "best", "gap_percent": "gap %", "steps_to_optimum": "steps to opt.",
               "steps_run": "steps", "stop_reason": "stop", "valid_rate": "valid", "n_unique": "unique",
               "prompt_tokens": "prompt tok.", "completion_tokens": "compl. tok.", "cost_usd": "cost $"}
TOP_SOLUTIONS = 10
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1360px;
       color: #222; padding: 0 1em; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
.scroll { overflow-x: auto; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text { text-align: left; font-family: ui-monospace, monospace; max-width: 60em;
       white-space: pre-wrap; } td.name { text-align: left; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 0.5em 0 1.5em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
.totals td:first-child { text-align: left; font-weight: 600; }
.note { color: #a33; }
"""


def write_report(path: Path | str, out: Path | str | None = None,
                 on_skip: Callable[[Path, str], None] | None = None,
                 on_warning: Callable[[str], None] | None = None) -> Path:
    """Write the report of the run or tree at `path` to `out` (default: `path/report.html`). Unreadable runs
    are left out and reported to `on_skip` (see `opro.analysis.load`); seeds that repeat within a setting
    (averaged as one replicate) are reported to `on_warning`."""
    from opro.compare import run_records, seed_repeats

    path = Path(path)
    target = Path(out) if out else path / "report.html"
    results = load(path, on_skip=on_skip)
    for line in seed_repeats(run_records(results)) if on_warning else []:
        on_warning(line)
    text = render_report(results, str(path), _reproduction(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(redact(text), encoding="utf-8")
    except OSError as error:  # a full disk: one line (the runs were only read)
        raise OproError(f"cannot write the report {target}: {error.strerror or error}") from None
    return target


def render_report(results: Results, title: str, head: list[str] | None = None) -> str:
    """The report of `results` as one HTML document (`head`: sections shown first)."""
    runs = results.runs
    sections = [
        f"<h1>OPRO report: {_e(title)}</h1>",
        f"<p class='meta'>{len(runs)} run(s) in {runs['group'].nunique()} setting(s); generated "
        f"{time.strftime('%Y-%m-%d %H:%M')} by opro {_version()}</p>",
        *(head or []),
        "<h2>Totals</h2>", _totals(results),
        "<h2>Runs</h2>", _table(runs[[c for c in SUMMARY_COLUMNS if c in runs]].rename(columns=RUN_HEADERS),
                                text=("run", "method", "instance")),
    ]
    sections += _comparison(results)
    for group in sorted(runs["group"].astype(str).unique()):
        subset = results.subset(runs.loc[runs["group"] == group, "run"])
        sections += [f"<h2>{_e(group)}</h2>", *_group_plots(subset, group), "<h3>Top solutions</h3>",
                     _top_solutions(subset)]
    sections += ["<h2>Configuration</h2>", *_configs(results)]
    body = "\n".join(sections)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>OPRO report: {_e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def screenshot(html_path: Path | str, png_path: Path | str, width: int = 1440, height: int = 16000,
               browser: str | None = None) -> Path:
    """Render an HTML file to a PNG in headless Chromium (trimmed of the blank page below the content)."""
    browser = browser or next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise OproError(f"no headless browser found (tried {', '.join(BROWSERS)}); install Debian's `chromium`")
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="opro-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   f"--screenshot={png_path}", Path(html_path).resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=180,
                                  env={**os.environ, "HOME": profile})
        except (OSError, subprocess.TimeoutExpired) as error:
            raise OproError(f"{browser} failed: {error}") from error
    if done.returncode != 0 or not png_path.is_file():
        raise OproError(f"{browser} did not write {png_path}: {done.stderr.strip().splitlines()[-1:]}")
    _trim(png_path)
    return png_path


def _reproduction(path: Path) -> list[str]:
    """An `opro reproduce` folder's side-by-side table and figures (none for other folders)."""
    record_path = path / "reproduce.json"
    if not record_path.is_file() or not (path / "table.csv").is_file():
        return []
    try:
        record = json.loads(record_path.read_text())
        table = pd.read_csv(path / "table.csv", keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as error:
        return [f"<p class='note'>unreadable reproduction record: {_e(error)}</p>"]
    models = ", ".join(f"{k} {v}" for k, v in record.get("models", {}).items())
    out = [f"<h2>Reproduction: {_e(record.get('title', ''))}</h2>",
           f"<p class='meta'>models: {_e(models)}; verdicts: {_e(record.get('verdicts', {}))}</p>",
           _table(table.drop(columns=["experiment"]), text=("row", "paper_column", "part"))]
    for name in record.get("figures", []):
        if (path / name).is_file():
            out.append(_image((path / name).read_bytes(), name))
    return out


def _totals(results: Results) -> str:
    runs, steps = results.runs, results.steps
    priced = steps[steps["step"] > 0]["cost_usd"] if "cost_usd" in steps else pd.Series(dtype=float)
    cost = "unknown (no price for the model)" if priced.isna().any() or priced.empty else f"${priced.sum():.4f}"
    rows = [
        ("runs (finished)", f"{len(runs)} ({int(runs['finished'].sum())})"),
        ("proposals (valid)", f"{int(steps['n_candidates'].sum())} ({int(steps['n_valid'].sum())})"),
        ("prompt tokens", f"{int(steps['prompt_tokens'].sum()):,}"),
        ("completion tokens", f"{int(steps['completion_tokens'].sum()):,}"),
        ("estimated cost", cost),
        ("wall time", f"{steps['seconds'].sum():.1f} s"),
        ("models", ", ".join(sorted(runs["model"].astype(str).unique()))),
    ]
    cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='totals'>{cells}</table>"


def _comparison(results: Results) -> list[str]:
    from opro.compare import comparison_table, run_records, seed_repeats
    from opro.problems import known_class

    solver_tasks = [kind for kind in results.runs["problem"].unique() if not known_class(str(kind)).uses_scorer]
    finished = results.runs[results.runs["finished"] & results.runs["problem"].isin(solver_tasks)]
    if finished.empty:
        return []
    subset = results.subset(finished["run"])
    table = comparison_table(subset)
    shown = table[["group", "method", "kind", "runs", "seeds", "gap", "solved", "steps", "unique"]].rename(columns={
        "gap": "gap % (mean ± SE over seeds)", "steps": "steps to optimum", "unique": "unique solutions"})
    notes = [f"<p class='note'>{_e(line)}.</p>" for line in seed_repeats(run_records(subset))]
    return ["<h2>Comparison with baselines</h2>", *notes, _table(shown, text=("group", "method", "kind")),
            _figure(plots.method_comparison(table), "Optimality gap per method and setting (mean ± SE over runs; "
                                                     "hatched bars are baselines).")]


def _group_plots(results: Results, group: str) -> list[str]:
    runs = results.runs
    out = [_figure(plots.optimization_curve(results, title=group),
                   "Best so far against step (line; mean ± SE band over runs) and every scored proposal (points).")]
    from opro.problems import known_class

    problem = str(runs["problem"].iloc[0])
    try:
        if problem == "tsp":
            out.append(_figure(plots.tsp_tours(results), "The best tour found (run with the smallest gap) beside "
                                                         "the certified optimal tour."))
        elif problem == "linreg":
            out.append(_figure(plots.linreg_landscape(results), "The (w, b) proposals of the best run, coloured by "
                                                                "step, over the contours of the sum of squared "
                                                                "errors."))
        elif known_class(problem).uses_scorer:
            out.append(_figure(plots.prompt_accuracy(results), "Each instruction's training accuracy against "
                                                               "step; the best ones are numbered and quoted."))
            out += _budget(results, group)
            validated = [run for run in runs["run"] if "validation_of_best" in results.steps.columns
                         and results.steps.loc[results.steps["run"] == run, "validation_of_best"].notna().any()]
            if validated:  # problem.eval_interval: the §5.4 curves of the group's first such run
                out.append(_figure(plots.validation_curve(results.records[validated[0]]["path"], title=validated[0]),
                                   "Training (best so far), validation and test accuracy against step (paper "
                                   "§5.4), for one run; points are each instruction's validation accuracy."))
    except (OproError, OSError, ValueError) as error:
        out.append(f"<p class='note'>{_e(problem)} plot unavailable: {_e(error)}</p>")
    return out


def _budget(results: Results, group: str) -> list[str]:
    """Prompt runs with scorer calls recorded: accuracy against scorer calls, and the equal-budget table."""
    from opro.budget import accuracy_vs_calls, equal_budget

    rows = [r for r in equal_budget(results) if r["group"] == group]
    if not rows:
        return []
    frame = pd.DataFrame(rows)[["method", "runs", "budget_scorer_calls", "best_at_budget", "total_scorer_calls"]]
    return [_figure(accuracy_vs_calls(results, group), "Best training accuracy against scorer calls (mean ± SE "
                                                        "band over runs per method); dotted: the equal budget."),
            f"<p>Best training accuracy at the equal budget of {rows[0]['budget_scorer_calls']:.0f} scorer calls "
            "(the smallest total any run reached):</p>", _table(frame, ("method", "best_at_budget",
                                                                         "total_scorer_calls"))]


def _top_solutions(results: Results) -> str:
    cands = results.candidates
    cands = cands[cands["valid"] & cands["score"].notna()]
    if cands.empty:
        return "<p>No valid solutions.</p>"
    minimize = bool(results.runs["minimize"].iloc[0])
    if cands["gap_percent"].notna().all():  # comparable across instances
        best = cands.sort_values(["gap_percent", "step"])
    else:
        best = cands.sort_values(["score", "step"], ascending=[minimize, True])
    best = best.drop_duplicates(["run", "solution"])
    columns = ["solution", "score", "gap_percent", "run", "step"]
    return _table(best[columns].head(TOP_SOLUTIONS), text=("solution", "run"))


def _configs(results: Results) -> list[str]:
    out = []
    for group in sorted(results.runs["group"].astype(str).unique()):
        run_id = str(results.runs.loc[results.runs["group"] == group, "run"].iloc[0])
        record = results.records[run_id]["config"]
        shown = {k: record[k] for k in ("config", "instance", "optimizer", "versions", "git") if k in record}
        out.append(f"<details open><summary>{_e(group)}: config.json of {_e(run_id)}</summary>"
                   f"<pre>{_e(json.dumps(shown or record, indent=2, default=str))}</pre></details>")
    return out


def _figure(figure: Any, caption: str) -> str:
    buffer = io.BytesIO()
    plots.as_written(figure).savefig(buffer, format="png", dpi=110)
    return _image(buffer.getvalue(), caption)


def _image(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _table(frame: pd.DataFrame, text: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(f"<td class='{'text' if c == 'solution' else 'name'}'>{_e(_cell(v))}</td>" if c in text
                        else f"<td>{_e(_cell(v))}</td>" for c, v in zip(frame.columns, row, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"
    return str(value)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _version() -> str:
    try:
        return metadata.version("opro")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _trim(png_path: Path) -> None:
    """Cut the blank (white) rows below the page's content."""
    import numpy as np
    from PIL import Image

    with Image.open(png_path) as image:
        pixels = np.asarray(image.convert("L"))
        inked = np.flatnonzero((pixels < 250).any(axis=1))
        if len(inked) and inked[-1] + 40 < pixels.shape[0]:
            image.crop((0, 0, image.width, int(inked[-1]) + 40)).save(png_path)

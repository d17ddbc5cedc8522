"""Render the images of docs/analysis.md into docs/images/.

    python docs/make_images.py [REAL_TSP_RUNS]

REAL_TSP_RUNS is a folder of real TSP runs (the optimization curve, the tours and the report screenshot
come from it), e.g. the TSP runs of the default-optimizer benchmark, base and tuned on the same seeds:
    python -m benchmarks.default_optimizer --out results/default-optimizer --threads 1 --cache-prompt
    python docs/make_images.py results/default-optimizer/tsp
Without it, those come from the scripted tree too. The regression landscape, the method comparison and the
instruction plot use the scripted tree of the tests (tests/analysis_runs.py: the real loop driven by a
scripted optimizer; the prompt-optimization run is synthetic).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opro import analysis, plots  # noqa: E402
from opro.compare import comparison_table  # noqa: E402
from opro.report import screenshot, write_report  # noqa: E402
from tests.analysis_runs import write_prompt_run, write_tree  # noqa: E402

OUT = REPO / "docs" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        root = write_tree(Path(folder) / "results")
        (root / "gsm8k").mkdir()
        write_prompt_run(root / "gsm8k", steps=10)
        scripted = analysis.load(root)
        real = analysis.load(sys.argv[1]) if len(sys.argv) > 1 else scripted.subset(
            scripted.runs.query("task == 'tsp'")["run"])
        plots.optimization_curve(real, value="score" if real.runs["instance"].nunique() == 1 else "gap",
                                 path=OUT / "curve-tsp.png")
        plots.tsp_tours(real, path=OUT / "tours.png")
        plots.linreg_landscape(scripted, path=OUT / "landscape.png")
        plots.prompt_accuracy(scripted, path=OUT / "instructions.png")
        both = scripted.subset(scripted.runs.query("task != 'gsm8k'")["run"])
        plots.method_comparison(comparison_table(both), path=OUT / "methods.png")
        report_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else root
        html = write_report(report_dir, Path(folder) / "report.html")
        png = screenshot(html, Path(folder) / "report.png")
        with Image.open(png) as image:  # the top of the page, at a size a README shows
            top = image.crop((0, 0, image.width, min(image.height, 2600)))
            top.resize((top.width * 2 // 3, top.height * 2 // 3)).save(OUT / "report.png", optimize=True)
    print("\n".join(str(p.relative_to(REPO)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()

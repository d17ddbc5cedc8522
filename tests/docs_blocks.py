"""The shell blocks of the documentation, and the small settings they are run with in the tests.

A fenced block in README.md or docs/ is run when its language is a shell (`sh`, `bash`, `shell`). Markers, an
HTML comment on the line before the fence (invisible on the site):
- `<!-- no-run: why -->`: the block is not run (it installs, trains for long, needs a key, a GPU or a server);
- `<!-- file: NAME -->`: the block (any language) is written to NAME in the working folder, for later blocks.

The blocks run with `opro` on PATH as a shim that shrinks every command to a few seconds of model time
(`shrink`): one step of two proposals, short completions, one thread, one seed and instance, two
questions of a prompt task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELLS = ("sh", "bash", "shell")
_OPEN = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
_CLOSE = re.compile(r"^\s*```\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>no-run|file)\s*:?\s*(?P<value>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is (1-based line of the opening fence), its language, text and marker."""

    path: Path
    line: int
    lang: str
    text: str
    marker: str | None = None  # "no-run" or "file"
    marker_value: str = ""  # the reason, or the file name

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in SHELLS and self.marker != "no-run"


def doc_pages() -> list[Path]:
    """README.md, then the site's pages in the order of mkdocs.yml's nav (a reader's order), then the rest."""
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w/-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.M)
    pages = [REPO / "docs" / name for name in nav if (REPO / "docs" / name).is_file()]
    rest = sorted(set((REPO / "docs").rglob("*.md")) - set(pages))
    return [REPO / "README.md", *pages, *rest]


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one markdown file, dedented to their fence, with the marker just before each."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if _CLOSE.match(lines[j]))
        indent = len(opening["indent"])
        text = "\n".join(line[indent:] for line in lines[i + 1:end]) + "\n"
        before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.match(before)
        found.append(Block(path, i + 1, opening["lang"], text, marker["kind"] if marker else None,
                           marker["value"] if marker else ""))
        i = end + 1
    return found


PROMPT_TASKS = ("gsm8k", "bbh", "mmlu")
#: Options set to a small value wherever a command gives them.
SMALL = {"--steps": "1", "--candidates": "2", "--instances": "1", "--threads": "1", "--limit": "2",
         "--time-limit": "5"}
#: Options added where a command leaves them out.
ADDED = {
    "run": {"--steps": "1", "--candidates": "2", "--threads": "1", "--max-tokens": "64"},
    "eval": {"--limit": "2", "--threads": "1"},
    "baselines": {"--time-limit": "5"},  # a TSP option: not added for linreg (below)
}
#: Settings over every cell of a sweep that runs (not --dry-run or --status): one short step a cell.
SWEEP_SETTINGS = ("loop.steps=1", "loop.candidates_per_step=2", "loop.max_tokens=64", "optimizer.threads=1")
#: Settings added to prompt-task runs and evaluations: two questions, short answers, a population of two
#: (EvoPrompt, APE, GEPA).
PROMPT_SETTINGS = ("problem.train_limit=2", "problem.validation_limit=2", "problem.scorer_max_tokens=16",
                   "loop.population=2")


def shrink(args: list[str]) -> list[str]:
    """`opro ARGS` with small settings: the same command, a few seconds of model time."""
    out, i = [], 0
    while i < len(args):
        flag = args[i]
        if flag in SMALL and i + 1 < len(args):
            out += [flag, SMALL[flag]]
            i += 2
        elif flag == "--seeds" and i + 1 < len(args):
            out += [flag, re.split(r"[-,]", args[i + 1])[0]]
            i += 2
        else:
            out.append(flag)
            i += 1
    command = out[0] if out else ""
    resumed = "--resume" in out or "--run" in out
    task = out[out.index("--task") + 1] if "--task" in out[:-1] else ""
    if command == "sweep":
        if not {"--dry-run", "--status"} & set(out):
            out += [item for setting in SWEEP_SETTINGS for item in ("--set", setting)]
    elif command in ADDED and not (command == "run" and resumed):
        added = {f: v for f, v in ADDED[command].items() if not (command == "baselines" and task == "linreg")}
        out += [item for flag, value in added.items() if flag not in out for item in (flag, value)]
    if command in ("run", "eval") and task in PROMPT_TASKS:
        out += [item for setting in PROMPT_SETTINGS for item in ("--set", setting)]
    return out


SHIM = """#!{python}
# `opro` with small settings for the docs' blocks (tests/docs_blocks.py).
import sys
sys.path.insert(0, {repo!r})
if __name__ == "__main__":  # not again in a sweep's spawned workers
    from tests.docs_blocks import shrink
    from opro.cli import main
    sys.exit(main(shrink(sys.argv[1:])))
"""

"""The progress display of `opro run`: a rich progress bar on stderr, optionally a live curve."""

from __future__ import annotations

from pathlib import Path

from opro.errors import OproError


class RunProgress:
    """A rich progress bar on stderr: step, best so far, valid rate."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.n_candidates = self.n_valid = 0

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, run_dir, config) -> None:
        if self.quiet:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"), console=Console(stderr=True),
        )
        self.task = self.bar.add_task(config.task, total=config.loop.steps, status=f"→ {run_dir.path}")
        self.bar.start()

    def step(self, row) -> None:
        if row.step > 0:
            self.n_candidates += row.n_candidates
            self.n_valid += row.n_valid
        if self.bar is None:
            return
        rate = f"{self.n_valid / self.n_candidates:.0%}" if self.n_candidates else "-"
        status = f"best {row.best_so_far:.6g}  valid {rate}" + ("  [green]optimal" if row.optimal else "")
        self.bar.update(self.task, completed=row.step, status=status)


class PlottingProgress(RunProgress):
    """The progress bar, plus the optimization curve written to RUN_DIR/curve.png every `every` steps (and at
    the last step, or once the optimum is reached)."""

    def __init__(self, quiet: bool, every: int) -> None:
        if every < 1:
            raise OproError(f"--plot-every must be >= 1, got {every}")
        super().__init__(quiet)
        self.every = every
        self.run_dir: Path | None = None
        self.total = 0
        self.optimal = False

    def start(self, run_dir, config) -> None:
        super().start(run_dir, config)
        self.run_dir, self.total, self.optimal = run_dir.path, config.loop.steps, False

    def step(self, row) -> None:
        super().step(row)
        reached = row.optimal and not self.optimal
        self.optimal = self.optimal or row.optimal
        if self.run_dir is not None and (row.step % self.every == 0 or row.step >= self.total or reached):
            from opro.plots import write_live_curve

            write_live_curve(self.run_dir)


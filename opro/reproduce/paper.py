"""The paper's published numbers, as data: one CSV per table in `opro/reproduce/paper/`.

Each row is one value of the paper (Yang et al., "Large Language Models as Optimizers", ICLR 2024; the
version is in `paper_version`) with where it stands there: `paper_table`, `paper_row` and `paper_column`
in the paper's own words, plus the keys the tables here match on (`metric`, `model`, `setting`). `mean`
is the reported value, `spread` its reported ± (`spread_kind`: std over `runs`), `successes` the runs that
reached the optimum (Table 3's "(# successes)"), `text` an instruction. Nothing here is typed into code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from opro.errors import OproError

#: The experiments with published numbers (the CSV files' stems).
TABLES = ("table2", "table3", "table4", "bbh")


@cache
def _read(name: str) -> pd.DataFrame:
    with resources.files("opro.reproduce").joinpath("paper", f"{name}.csv").open("rb") as handle:
        frame = pd.read_csv(handle, keep_default_na=False, na_values={"mean": [""], "spread": [""],
                                                                       "successes": [""], "runs": [""]})
    for column in ("mean", "spread", "successes", "runs"):
        frame[column] = pd.to_numeric(frame[column])
    return frame


def published(table: str) -> pd.DataFrame:
    """The paper's values of one table (a copy: callers may change it)."""
    if table not in TABLES:
        raise OproError(f"no published numbers for {table!r}; known: {', '.join(TABLES)}")
    return _read(table).copy()


def value(table: str, metric: str, model: str, setting: str) -> pd.Series:
    """One published value (the row with these keys); an OproError names a missing one."""
    frame = published(table)
    hit = frame[(frame["metric"] == metric) & (frame["model"] == model) & (frame["setting"] == setting)]
    if len(hit) != 1:
        raise OproError(f"{table}: {len(hit)} published values for metric={metric} model={model} {setting}")
    return hit.iloc[0]

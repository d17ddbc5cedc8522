"""The run directory's CSV files read back typed: its True/False columns are bools for every reader."""

from __future__ import annotations

from opro.readback import read_table
from opro.results import FLAG_COLUMNS, read_rows


def test_true_false_cells_read_back_as_bools(tmp_path):
    path = tmp_path / "candidates.csv"
    path.write_text("step,valid,duplicate,score,solution\n0,True,False,1.5,True\n1,False,False,,x\n")
    rows = read_rows(path)  # the loop's, the methods' and the RL export's reading
    assert rows[0] == {"step": "0", "valid": True, "duplicate": False, "score": "1.5", "solution": "True"}
    assert rows[1]["valid"] is False  # not the text "False", which would be true
    frame = read_table(path)  # opro.load's reading: the same columns are bool, a solution stays its text
    assert frame["valid"].tolist() == [True, False] and frame["solution"].tolist() == ["True", "x"]
    assert {"valid", "duplicate", "new_best", "optimal", "full", "correct"} == FLAG_COLUMNS

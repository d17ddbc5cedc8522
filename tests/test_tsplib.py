"""TSPLIB parsing, the exact distance rules, and the published optima of the shared instances."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from opro.errors import OproError
from opro.solvers import solve_optimal, tour_length
from opro.tsplib import SHIPPED, distance_matrix, load_tsplib, resolve_instance

TSPLIB_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tsplib"
# Published optimal tour lengths (TSPLIB95 solutions list).
OPTIMA = {
    "burma14": (14, "GEO", 3323),
    "att48": (48, "ATT", 10628),
    "eil51": (51, "EUC_2D", 426),
    "berlin52": (52, "EUC_2D", 7542),
}


def shared_instance(name: str) -> Path:
    path = TSPLIB_DIR / f"{name}.tsp"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


def reference_distance(kind: str, a: tuple[float, float], b: tuple[float, float]) -> int:
    """Scalar transcription of the TSPLIB95 C code (nint(x) = (int)(x + 0.5))."""
    xd, yd = a[0] - b[0], a[1] - b[1]
    if kind == "EUC_2D":
        return int(math.sqrt(xd * xd + yd * yd) + 0.5)
    if kind == "CEIL_2D":
        return math.ceil(math.sqrt(xd * xd + yd * yd))
    if kind == "ATT":
        rij = math.sqrt((xd * xd + yd * yd) / 10.0)
        tij = int(rij + 0.5)
        return tij + 1 if tij < rij else tij

    def rad(v: float) -> float:
        deg = int(v)
        return 3.141592 * (deg + 5.0 * (v - deg) / 3.0) / 180.0

    lat_i, lon_i, lat_j, lon_j = rad(a[0]), rad(a[1]), rad(b[0]), rad(b[1])
    q1, q2, q3 = math.cos(lon_i - lon_j), math.cos(lat_i - lat_j), math.cos(lat_i + lat_j)
    return int(6378.388 * math.acos(0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3)) + 1.0)


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_shared_instances_load_and_match_published_optima(name):
    inst = load_tsplib(shared_instance(name))
    n, kind, optimum = OPTIMA[name]
    assert (inst.name, inst.n, inst.edge_weight_type) == (name, n, kind)
    assert inst.coords.shape == (n, 2) and inst.comment
    d = inst.distances()
    assert d.dtype == np.int64 and (d == d.T).all() and (np.diag(d) == 0).all()
    result = solve_optimal(d)
    assert result.certified and result.length == optimum
    assert tour_length(d, result.tour) == optimum


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_distance_matrix_matches_the_scalar_tsplib_rules(name):
    inst = load_tsplib(shared_instance(name))
    d = inst.distances()
    pts = [tuple(p) for p in inst.coords.tolist()]
    for i, j in zip(*np.triu_indices(inst.n, 1), strict=True):
        assert d[i, j] == reference_distance(inst.edge_weight_type, pts[i], pts[j]), (i, j)


def test_distance_rules_on_hand_examples():
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 2.5], [10.0, 0.0]])
    euc = distance_matrix(pts, "EUC_2D")
    assert (euc[0, 1], euc[0, 2], euc[0, 3]) == (1, 3, 10)  # nint(1.414), nint(2.5), exact
    ceil = distance_matrix(pts, "CEIL_2D")
    assert (ceil[0, 1], ceil[0, 2], ceil[0, 3]) == (2, 3, 10)
    att = distance_matrix(pts, "ATT")
    assert att[0, 3] == 4  # r = sqrt(10) = 3.16, t = 3 < r -> 4
    assert att[0, 1] == 1  # r = sqrt(0.2) = 0.447, t = 0 < r -> 1
    flt = distance_matrix(pts, "euc")
    assert flt.dtype == np.float64 and flt[0, 1] == pytest.approx(math.sqrt(2))
    geo = distance_matrix(np.array([[16.47, 96.10], [16.47, 94.44], [16.53, 97.38]]), "GEO")
    assert geo.dtype == np.int64 and np.diag(geo).tolist() == [0, 0, 0]
    assert geo[0, 1] == reference_distance("GEO", (16.47, 96.10), (16.47, 94.44))
    # 16.53 is 16 degrees 53 minutes: truncation, not rounding to 17.
    assert geo[0, 2] == reference_distance("GEO", (16.47, 96.10), (16.53, 97.38))
    with pytest.raises(OproError, match="unsupported edge weight type"):
        distance_matrix(pts, "MAN_2D")
    with pytest.raises(OproError, match="shape"):
        distance_matrix(np.zeros((3, 3)), "EUC")


TEMPLATE = "NAME{s}toy\nTYPE{s}TSP\nCOMMENT{s}a toy\nDIMENSION{s}4\nEDGE_WEIGHT_TYPE{s}EUC_2D\nNODE_COORD_SECTION\n"
COORDS = "1 0 0\n2 3 0\n3 3 4\n4 0 4\n"


@pytest.mark.parametrize("sep", [" : ", ": ", ":", "  :  "])
@pytest.mark.parametrize("eof", ["EOF\n", "", "\n\nEOF\n"])
def test_header_separators_and_optional_eof(tmp_path, sep, eof):
    path = tmp_path / "toy.tsp"
    path.write_text(TEMPLATE.format(s=sep) + COORDS + eof)
    inst = load_tsplib(path)
    assert (inst.name, inst.comment, inst.edge_weight_type, inst.n) == ("toy", "a toy", "EUC_2D", 4)
    assert tour_length(inst.distances(), [0, 1, 2, 3]) == 14


def test_scientific_notation_and_tabs(tmp_path):
    path = tmp_path / "sci.tsp"
    path.write_text(TEMPLATE.format(s=": ") + "1\t0.0e0\t0\n2 3.0E+00 0\n3 3 4.0\n4 0 4\n")
    assert load_tsplib(path).coords[1].tolist() == [3.0, 0.0]


BAD_FILES = {
    "bad coordinate": (COORDS.replace("3 3 4", "3 3 oops"), 'bad.tsp line 9: expected "index x y"'),
    "too few fields": (COORDS.replace("2 3 0", "2 3"), "bad.tsp line 8"),
    "out of order": (COORDS.replace("2 3 0", "5 3 0"), "bad.tsp line 8: expected node index 2"),
    "too many nodes": (COORDS + "5 1 1\n", "DIMENSION is 4 but 5 nodes"),
    "too few nodes": ("1 0 0\n2 3 0\n", "DIMENSION is 4 but 2 nodes"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_coordinates_name_the_file_and_line(tmp_path, case):
    body, message = BAD_FILES[case]
    path = tmp_path / "bad.tsp"
    path.write_text(TEMPLATE.format(s=" : ") + body + "EOF\n")
    with pytest.raises(OproError) as err:
        load_tsplib(path)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TEMPLATE.format(s=": ").replace("DIMENSION: 4\n", "") + COORDS, "missing DIMENSION"),
        (TEMPLATE.format(s=": ").replace("DIMENSION: 4", "DIMENSION: four") + COORDS, "not an integer"),
        (TEMPLATE.format(s=": ").replace("EUC_2D", "EXPLICIT") + COORDS, "unsupported EDGE_WEIGHT_TYPE"),
        (TEMPLATE.format(s=": ").replace("EDGE_WEIGHT_TYPE: EUC_2D\n", "") + COORDS, "(missing)"),
        (TEMPLATE.format(s=": ").replace("TYPE: TSP", "TYPE: ATSP") + COORDS, "unsupported TYPE"),
        ("NAME: x\nDIMENSION: 2\nEDGE_WEIGHT_TYPE: EUC_2D\n", "no NODE_COORD_SECTION"),
        ("NAME: x\nthis is not a header\n", "bad.tsp line 2"),
        ("NAME: x\nEDGE_WEIGHT_TYPE: EUC_2D\nEDGE_WEIGHT_SECTION\n0 1\n", "bad.tsp line 3: unsupported section"),
        ("NAME: x\nEDGE_WEIGHT_TYPE: EXPLICIT\nEDGE_WEIGHT_SECTION\n0 1\n", "unsupported EDGE_WEIGHT_TYPE 'EXPLICIT'"),
    ],
)
def test_malformed_headers(tmp_path, text, message):
    path = tmp_path / "bad.tsp"
    path.write_text(text)
    with pytest.raises(OproError) as err:
        load_tsplib(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(OproError, match="cannot read TSPLIB file"):
        load_tsplib(tmp_path / "nope.tsp")
    with pytest.raises(OproError, match="cannot read TSPLIB file"):
        load_tsplib(tmp_path)


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_the_shipped_instances_are_the_published_ones(name):
    assert resolve_instance(name) == resolve_instance(f"{name}.tsp") == SHIPPED / f"{name}.tsp"
    n, kind, optimum = OPTIMA[name]
    loaded = load_tsplib(resolve_instance(name))
    assert (loaded.n, loaded.edge_weight_type) == (n, kind)
    if TSPLIB_DIR.is_dir():
        assert resolve_instance(name).read_bytes() == shared_instance(name).read_bytes()


def test_a_file_in_the_working_directory_comes_before_a_shipped_name(tmp_path, monkeypatch):
    (tmp_path / "burma14.tsp").write_text(shared_instance("eil51").read_text())
    monkeypatch.chdir(tmp_path)
    assert resolve_instance("burma14.tsp") == tmp_path / "burma14.tsp"
    assert resolve_instance("burma14") == SHIPPED / "burma14.tsp"

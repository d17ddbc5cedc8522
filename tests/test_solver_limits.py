"""No silently wrong optimum: unrepresentable distances are refused, bad cache entries are misses, and the
baselines honour --time-limit on a large instance (the optimum then reported as not certified)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from opro.errors import OproError
from opro.solvers import cached_optimal, local_search, solve_optimal, tour_length, two_opt
from opro.solvers.heuristics import farthest_insertion
from opro.tsplib import distance_matrix
from tests.cli_inprocess import invoke


def tsplib_text(coords, kind: str = "EUC_2D") -> str:
    rows = "".join(f"{i} {float(x)!r} {float(y)!r}\n" for i, (x, y) in enumerate(coords, start=1))
    return (f"NAME : t\nTYPE : TSP\nDIMENSION : {len(coords)}\nEDGE_WEIGHT_TYPE : {kind}\nNODE_COORD_SECTION\n"
            f"{rows}EOF\n")


@pytest.mark.parametrize("kind", ["EUC_2D", "CEIL_2D", "ATT"])
@pytest.mark.parametrize("scale", [1e200, 1e18, 1e15])
def test_coordinates_whose_distances_overflow_are_refused(tmp_path, monkeypatch, kind, scale):
    monkeypatch.setenv("OPRO_CACHE_DIR", str(tmp_path / "cache"))
    coords = [(0.0, 0.0), (scale, 0.0), (scale, scale), (0.0, scale), (scale / 2, scale / 3)]
    (tmp_path / "big.tsp").write_text(tsplib_text(coords, kind))
    for args in (["baselines", "--instance", "big.tsp"], ["run", "--dry-run", "--instance", "big.tsp"]):
        outcome = invoke(args, tmp_path)
        assert outcome.escaped is None, outcome.escaped
        assert outcome.refused_in_one_line and "distances over 5 nodes are not representable" in outcome.stderr
    assert not (tmp_path / "cache").exists()  # nothing certified, nothing cached
    with pytest.raises(OproError, match="not representable"):
        distance_matrix(np.array(coords), kind)


def test_large_but_representable_coordinates_give_a_positive_certified_optimum(tmp_path):
    coords = np.array([(0.0, 0.0), (1e12, 0.0), (1e12, 1e12), (0.0, 1e12), (5e11, 3e11)])
    d = distance_matrix(coords, "EUC_2D")
    best = cached_optimal(d, "EUC_2D", cache_dir=tmp_path)
    assert best.certified and best.length > 0 and best.length == tour_length(d, best.tour)


def test_solve_optimal_never_certifies_a_negative_matrix():
    d = -np.ones((5, 5))
    np.fill_diagonal(d, 0)
    with pytest.raises(OproError, match="non-negative"):
        solve_optimal(d)


def _cache_entry(tmp_path, d):
    first = cached_optimal(d, "EUC", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    return first, path


@pytest.mark.parametrize("change", [
    {"length": math.nan}, {"length": -5.0}, {"length": math.inf}, {"tour": [0, 0, 1, 2, 3, 4, 5, 6]},
    {"tour": [0, 1, 2]}, {"tour": "0,1,2"}, {"length": "NaN"},
])
def test_a_bad_optimum_cache_entry_is_a_miss_and_is_overwritten(tmp_path, change):
    rng = np.random.default_rng(4)
    d = distance_matrix(rng.integers(-100, 100, size=(8, 2)).astype(float), "EUC")
    first, path = _cache_entry(tmp_path, d)
    entry = {**json.loads(path.read_text()), **change}
    path.write_text(json.dumps(entry))  # json writes NaN and Infinity, which json.loads reads back
    again = cached_optimal(d, "EUC", cache_dir=tmp_path)
    assert again.certified and again.length == first.length and again.tour == first.tour
    stored = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} stored"))
    assert stored["length"] == first.length and sorted(stored["tour"]) == list(range(8))


def test_heuristics_stop_at_their_time_limit_with_a_valid_tour():
    rng = np.random.default_rng(0)
    d = distance_matrix(rng.integers(0, 10_000, size=(600, 2)).astype(float), "EUC")
    for solve in (farthest_insertion, two_opt, local_search):  # the seconds they take: benchmarks/time_limits.py
        tour = solve(d, time_limit=0.2)
        assert sorted(tour) == list(range(600)), solve.__name__


@pytest.mark.slow
def test_baselines_honour_the_time_limit_on_2000_nodes(tmp_path, monkeypatch):
    monkeypatch.setenv("OPRO_CACHE_DIR", str(tmp_path / "cache"))
    coords = np.random.default_rng(1).integers(0, 100_000, size=(2000, 2)).astype(float)
    (tmp_path / "r2000.tsp").write_text(tsplib_text(coords))
    outcome = invoke(["baselines", "--instance", "r2000.tsp", "--time-limit", "2", "--json"], tmp_path)
    assert outcome.code == 0, outcome.stderr
    report = json.loads(outcome.stdout)
    optimal = report["methods"]["optimal"]
    assert optimal["certified"] is False and report["n"] == 2000
    assert report["methods"]["local_search"]["stopped"] is True
    assert not list((tmp_path / "cache").rglob("*.json"))  # an uncertified optimum is never cached

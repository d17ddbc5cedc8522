"""TSP heuristics and exact solvers against brute force, local optimality, and the on-disk cache."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import opro.solvers.cache as cache_mod
from opro.errors import OproError
from opro.solvers import (
    cached_optimal,
    default_cache_dir,
    farthest_insertion,
    held_karp,
    is_permutation,
    local_search,
    nearest_neighbor,
    or_opt,
    solve_optimal,
    tour_length,
    two_opt,
    two_opt_or_opt,
)
from opro.tsplib import distance_matrix

HEURISTICS = {
    "nearest_neighbor": nearest_neighbor,
    "farthest_insertion": farthest_insertion,
    "two_opt": two_opt,
    "or_opt": or_opt,
    "two_opt_or_opt": two_opt_or_opt,
    "local_search": local_search,
}
SMALL = [(n, seed) for n in range(4, 9) for seed in range(3)]


def random_dist(n: int, seed: int) -> np.ndarray:
    """Paper-style instance: integer coordinates uniform in [-100, 100], float Euclidean distances."""
    rng = np.random.default_rng([seed, n])
    return distance_matrix(rng.integers(-100, 101, size=(n, 2)), "EUC")


def brute_force(d: np.ndarray) -> float:
    n = len(d)
    return min(tour_length(d, [0, *rest]) for rest in itertools.permutations(range(1, n)))


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


@pytest.mark.parametrize(("n", "seed"), SMALL)
def test_heuristics_give_valid_tours_no_shorter_than_optimum(n, seed):
    d = random_dist(n, seed)
    best = brute_force(d)
    for name, solve in HEURISTICS.items():
        tour = solve(d)
        assert is_permutation(tour, n) and tour[0] == 0, name
        assert tour_length(d, tour) >= best - 1e-9, name


@pytest.mark.parametrize(("n", "seed"), SMALL)
def test_local_search_finds_the_optimum_of_small_instances(n, seed):
    d = random_dist(n, seed)
    assert close(tour_length(d, local_search(d, seed=seed)), brute_force(d))


def two_opt_gain(d: np.ndarray, tour: list[int]) -> float:
    """Largest gain of any 2-opt move, by explicit segment reversal."""
    base, n, gain = tour_length(d, tour), len(tour), 0.0
    for i in range(n - 1):
        for j in range(i + 2, n):
            cand = tour[: i + 1] + tour[i + 1 : j + 1][::-1] + tour[j + 1 :]
            gain = max(gain, base - tour_length(d, cand))
    return gain


def or_opt_gain(d: np.ndarray, tour: list[int]) -> float:
    """Largest gain of moving a segment of 1-3 consecutive nodes (either orientation) elsewhere."""
    base, n, gain = tour_length(d, tour), len(tour), 0.0
    for length in range(1, 4):
        for i in range(n):
            rolled = tour[i:] + tour[:i]
            seg, rest = rolled[:length], rolled[length:]
            for at in range(1, len(rest) + 1):
                for piece in (seg, seg[::-1]):
                    gain = max(gain, base - tour_length(d, rest[:at] + piece + rest[at:]))
    return gain


@pytest.mark.parametrize("seed", range(4))
def test_two_opt_and_or_opt_results_are_locally_optimal(seed):
    d = random_dist(25, seed)
    tol = 1e-7
    assert two_opt_gain(d, two_opt(d)) <= tol
    assert or_opt_gain(d, or_opt(d)) <= tol
    both = two_opt_or_opt(d)
    assert two_opt_gain(d, both) <= tol and or_opt_gain(d, both) <= tol
    strong = local_search(d, seed=seed, kicks=30)
    assert two_opt_gain(d, strong) <= tol and or_opt_gain(d, strong) <= tol


def test_two_opt_improves_a_given_tour_and_keeps_it_valid():
    d = random_dist(40, 1)
    start = list(np.random.default_rng(0).permutation(40))
    tour = two_opt(d, start)
    assert is_permutation(tour, 40) and tour_length(d, tour) < tour_length(d, start)
    with pytest.raises(OproError):
        two_opt(d, [0, 1, 1])


def reference_farthest_insertion(d: np.ndarray) -> list[int]:
    """Direct transcription of the definition (start [0]; maximize the minimal insertion cost)."""
    tour, left = [0], set(range(1, len(d)))
    while left:

        def cost(k: int, pos: int) -> float:
            i, j = tour[pos], tour[(pos + 1) % len(tour)]
            return d[i, k] + d[k, j] - d[i, j]

        k = max(sorted(left), key=lambda k: min(cost(k, p) for p in range(len(tour))))
        pos = min(range(len(tour)), key=lambda p: cost(k, p))
        tour.insert(pos + 1, k)
        left.remove(k)
    return tour


@pytest.mark.parametrize("seed", range(3))
def test_farthest_insertion_follows_the_definition(seed):
    rng = np.random.default_rng(seed)
    d = distance_matrix(rng.uniform(-100, 100, size=(12, 2)), "EUC")
    assert farthest_insertion(d) == reference_farthest_insertion(d)


def test_nearest_neighbor_on_a_line():
    d = distance_matrix(np.array([[0, 0], [10, 0], [1, 0], [3, 0], [6, 0]], dtype=float), "EUC")
    assert nearest_neighbor(d) == [0, 2, 3, 4, 1]
    assert nearest_neighbor(d, start=1) == [0, 1, 4, 3, 2]
    with pytest.raises(OproError):
        nearest_neighbor(d, start=5)


def test_heuristics_handle_duplicate_points_and_integer_matrices():
    coords = np.array([[0, 0]] * 4 + [[5, 5]] * 3 + [[9, 1], [2, 7]], dtype=float)
    for kind in ("EUC", "EUC_2D"):
        d = distance_matrix(coords, kind)
        best = brute_force(d)
        for name, solve in HEURISTICS.items():
            tour = solve(d)
            assert is_permutation(tour, len(coords)) and tour_length(d, tour) >= best - 1e-9, name
        assert close(tour_length(d, local_search(d)), best)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_instances(n):
    d = random_dist(n, 0)
    for solve in HEURISTICS.values():
        assert solve(d) == list(range(n))
    result = solve_optimal(d)
    assert result.certified and result.tour == list(range(n)) and close(result.length, brute_force(d))


@pytest.mark.parametrize(("n", "seed"), [(n, seed) for n in range(4, 10) for seed in range(2)])
def test_held_karp_and_solve_optimal_match_brute_force(n, seed):
    d = random_dist(n, seed)
    best = brute_force(d)
    length, tour = held_karp(d)
    assert close(length, best) and close(tour_length(d, tour), best) and tour[0] == 0
    for method in ("auto", "milp"):
        result = solve_optimal(d, method=method)
        assert result.certified, method
        assert close(result.length, best) and close(tour_length(d, result.tour), best), method
        assert result.tour[0] == 0 and result.lower_bound == result.length


def test_held_karp_rejects_large_instances():
    with pytest.raises(OproError, match="n <= 16"):
        held_karp(random_dist(17, 0))


def test_held_karp_agrees_with_milp_at_13_nodes():
    d = random_dist(13, 5)
    assert close(held_karp(d)[0], solve_optimal(d, method="milp").length)


@pytest.mark.parametrize("seed", range(3))
def test_solve_optimal_n50_is_certified_and_no_worse_than_local_search(seed):
    d = random_dist(50, seed)
    result = solve_optimal(d, seed=seed)
    heuristic = tour_length(d, local_search(d, seed=seed))
    assert result.certified and result.method == "milp_dfj"
    assert is_permutation(result.tour, 50) and result.tour[0] == 0
    assert close(tour_length(d, result.tour), result.length)
    assert result.length <= heuristic + 1e-9 * heuristic
    assert result.length <= result.heuristic_length + 1e-9 * heuristic
    assert result.stats["lp_bound"] <= result.length + 1e-6


def test_solve_optimal_n100_is_certified():
    d = random_dist(100, 1)
    result = solve_optimal(d)
    assert result.certified and result.length <= tour_length(d, local_search(d)) * (1 + 1e-9)


def test_solve_optimal_out_of_time_is_uncertified_but_valid():
    d = random_dist(60, 0)
    result = solve_optimal(d, time_limit=1e-3)
    assert not result.certified and is_permutation(result.tour, 60)
    assert close(tour_length(d, result.tour), result.length) and result.lower_bound <= result.length


def test_solve_optimal_rejects_bad_input():
    with pytest.raises(OproError):
        solve_optimal(np.zeros((3, 4)))
    with pytest.raises(OproError):
        solve_optimal(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(OproError, match="unknown method"):
        solve_optimal(random_dist(5, 0), method="magic")
    with pytest.raises(OproError):
        tour_length(random_dist(5, 0), [0, 1, 2, 3])


def test_cached_optimal_stores_and_reuses(tmp_path, monkeypatch):
    d = random_dist(20, 3)
    first = cached_optimal(d, "EUC", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.json"))
    assert first.certified and len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    def no_solve(*args, **kwargs):
        raise AssertionError("should have been served from the cache")

    monkeypatch.setattr(cache_mod, "solve_optimal", no_solve)
    again = cached_optimal(d, "EUC", cache_dir=tmp_path)
    assert again.certified and again.tour == first.tour and again.length == first.length
    with pytest.raises(AssertionError):  # another key_extra is another instance
        cached_optimal(d, "GEO", cache_dir=tmp_path)


def test_cached_optimal_ignores_a_corrupt_file(tmp_path):
    d = random_dist(15, 2)
    first = cached_optimal(d, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    data["length"] = data["length"] - 1.0
    path.write_text(json.dumps(data))
    assert cached_optimal(d, cache_dir=tmp_path).length == first.length
    path.write_text("{not json")
    assert cached_optimal(d, cache_dir=tmp_path).length == first.length
    assert json.loads(path.read_text())["length"] == first.length


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPRO_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "tsp_optimal"
    cached_optimal(random_dist(8, 0))
    assert len(list((tmp_path / "tsp_optimal").glob("*.json"))) == 1
    monkeypatch.delenv("OPRO_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "opro", "tsp_optimal")

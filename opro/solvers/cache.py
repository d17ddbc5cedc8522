"""On-disk cache of certified optimal tours, one JSON file per instance.

The key is sha256 over the matrix dtype, shape and bytes (C order) plus `key_extra` (e.g. the distance
type). Files live in `$OPRO_CACHE_DIR/tsp_optimal` when that variable is set, else
`~/.cache/opro/tsp_optimal`. Only certified, finite, non-negative results are stored; a cached file is
trusted only when its length is finite and non-negative and its tour is a permutation whose recomputed
length matches. Any other file is a miss: the optimum is recomputed and the file overwritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from opro.solvers.exact import OptimalTour, solve_optimal
from opro.solvers.tours import check_dist, is_permutation, tour_length


def default_cache_dir() -> Path:
    """`$OPRO_CACHE_DIR/tsp_optimal`, or `~/.cache/opro/tsp_optimal` when OPRO_CACHE_DIR is unset."""
    root = os.environ.get("OPRO_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "opro") / "tsp_optimal"


def instance_key(dist: np.ndarray, key_extra: str = "") -> str:
    """Hex sha256 of the distance matrix (dtype, shape, bytes) and key_extra."""
    d = np.ascontiguousarray(check_dist(dist))
    h = hashlib.sha256()
    h.update(f"{d.dtype.str}|{d.shape}|{key_extra}|".encode())
    h.update(d.tobytes())
    return h.hexdigest()


def _load(path: Path, dist: np.ndarray) -> OptimalTour | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tour = [int(v) for v in data["tour"]]
        length = float(data["length"])
        heuristic = data.get("heuristic_length")
        heuristic_length = float("nan") if heuristic is None else float(heuristic)
        seconds = float(data.get("seconds", 0.0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not is_valid_optimum(length) or not is_permutation(tour, dist.shape[0]):
        return None
    if abs(tour_length(dist, tour) - length) > 1e-9 * max(1.0, abs(length)):
        return None
    return OptimalTour(
        length=length,
        tour=tour,
        certified=True,
        method=str(data.get("method", "cache")),
        seconds=seconds,
        lower_bound=length,
        heuristic_length=heuristic_length,
    )


def _store(path: Path, result: OptimalTour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "length": result.length,
        "tour": result.tour,
        "method": result.method,
        "seconds": result.seconds,
        "heuristic_length": None if np.isnan(result.heuristic_length) else result.heuristic_length,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_optimal(
    dist: np.ndarray, key_extra: str = "", cache_dir: Path | None = None, time_limit: float = 600.0
) -> OptimalTour:
    """solve_optimal(dist) memoized on disk; uncertified results are returned but not stored."""
    d = check_dist(dist)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    path = folder / f"{instance_key(d, key_extra)}.json"
    if path.is_file() and (hit := _load(path, d)) is not None:
        return hit
    result = solve_optimal(d, time_limit=time_limit)
    if result.certified and is_valid_optimum(result.length):
        _store(path, result)  # over a bad entry, if there was one
    return result


def is_valid_optimum(length: float) -> bool:
    """A tour length that may be certified or cached: finite and not negative."""
    return math.isfinite(length) and length >= 0

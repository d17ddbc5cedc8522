"""TSPLIB loader and distance functions (Reinelt, TSPLIB95, section 2).

Supported: symmetric instances given by NODE_COORD_SECTION with EDGE_WEIGHT_TYPE EUC_2D, CEIL_2D,
ATT or GEO. Distances follow the TSPLIB rules exactly (integer valued); the extra type "EUC" is plain
float Euclidean distance, used for the OPRO paper's random instances. Nodes are 0-based here
(TSPLIB node i is row i - 1).

A few small public TSPLIB instances ship with the package (`SHIPPED`: burma14, att48, eil51, berlin52), so
`--instance burma14` works from any directory; `resolve_instance` turns a name or a path into a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opro.errors import OproError

TSPLIB_TYPES = ("EUC_2D", "CEIL_2D", "ATT", "GEO")
DISTANCE_TYPES = ("EUC", *TSPLIB_TYPES)

#: The folder of the TSPLIB instances that ship with the package.
SHIPPED = Path(__file__).parent / "data" / "tsplib"

_GEO_PI = 3.141592
_GEO_RRR = 6378.388


@dataclass(frozen=True)
class TsplibInstance:
    """A TSPLIB instance: coords is (n, 2) float, rows in node order (TSPLIB node i -> row i - 1)."""

    name: str
    coords: np.ndarray
    edge_weight_type: str
    comment: str

    @property
    def n(self) -> int:
        return len(self.coords)

    def distances(self) -> np.ndarray:
        """The (n, n) int64 TSPLIB distance matrix."""
        return distance_matrix(self.coords, self.edge_weight_type)


def _nint(x: np.ndarray) -> np.ndarray:
    """TSPLIB nint: (int)(x + 0.5), i.e. round half up for the non-negative values used here."""
    return np.floor(x + 0.5).astype(np.int64)


def _geo_radians(v: np.ndarray) -> np.ndarray:
    """DDD.MM (degrees.minutes) -> radians, truncating to whole degrees as TSPLIB's (int) cast does."""
    deg = np.trunc(v)
    return _GEO_PI * (deg + 5.0 * (v - deg) / 3.0) / 180.0


#: Largest tour length: sums of distances stay exact in float64 (2^53) and far inside int64.
MAX_TOUR_LENGTH = 2.0**53


def distance_matrix(coords: np.ndarray, edge_weight_type: str) -> np.ndarray:
    """(n, n) distance matrix: float64 for "EUC", int64 (exact TSPLIB rules) otherwise. Diagonal is 0.

    Coordinates whose distances are not finite, or whose tours could be longer than MAX_TOUR_LENGTH, are a
    one-line OproError (an int64 cast of an overflowed distance would otherwise wrap to a negative length)."""
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise OproError(f"coords must have shape (n, 2), got {xy.shape}")
    span = float(np.ptp(xy, axis=0).max()) if len(xy) else 0.0
    if not np.isfinite(xy).all() or not span * 2 * len(xy) <= MAX_TOUR_LENGTH:  # each distance <= 2 * span
        raise OproError(f"coordinates span {span:g}: distances over {len(xy)} nodes are not representable "
                        f"(tour lengths must stay below {MAX_TOUR_LENGTH:g})")
    kind = edge_weight_type.upper()
    if kind == "GEO":
        lat, lon = _geo_radians(xy[:, 0]), _geo_radians(xy[:, 1])
        q1 = np.cos(lon[:, None] - lon[None, :])
        q2 = np.cos(lat[:, None] - lat[None, :])
        q3 = np.cos(lat[:, None] + lat[None, :])
        arg = np.clip(0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3), -1.0, 1.0)
        d = (_GEO_RRR * np.arccos(arg) + 1.0).astype(np.int64)
        np.fill_diagonal(d, 0)
        return d
    diff = xy[:, None, :] - xy[None, :, :]
    sq = np.einsum("ijk,ijk->ij", diff, diff)
    if kind == "EUC":
        return np.sqrt(sq)
    if kind == "EUC_2D":
        return _nint(np.sqrt(sq))
    if kind == "CEIL_2D":
        return np.ceil(np.sqrt(sq)).astype(np.int64)
    if kind == "ATT":
        r = np.sqrt(sq / 10.0)
        t = _nint(r)
        return np.where(t < r, t + 1, t)
    supported = ", ".join(DISTANCE_TYPES)
    raise OproError(f"unsupported edge weight type {edge_weight_type!r} (supported: {supported})")


def _parse_header(line: str) -> tuple[str, str] | None:
    """'KEY : value' or 'KEY: value' -> (KEY, value); None when the line has no colon."""
    if ":" not in line:
        return None
    key, value = line.split(":", 1)
    return key.strip().upper(), value.strip()


def _edge_weight_type(header: dict[str, str], name: str) -> str:
    kind = header.get("EDGE_WEIGHT_TYPE", "").upper()
    if kind not in TSPLIB_TYPES:
        supported = ", ".join(TSPLIB_TYPES)
        raise OproError(f"{name}: unsupported EDGE_WEIGHT_TYPE {kind or '(missing)'!r} (supported: {supported})")
    return kind


def shipped_instances() -> list[str]:
    """Names of the TSPLIB instances that ship with the package."""
    return sorted(p.stem for p in SHIPPED.glob("*.tsp"))


def resolve_instance(instance: str | Path) -> Path:
    """A .tsp file: `instance` itself when it is a file, else the shipped instance of that name (`burma14` or
    `burma14.tsp`). Neither is a one-line OproError that lists the shipped names."""
    path = Path(instance)
    if path.is_file():
        return path.resolve()
    if path.parent == Path(".") and (SHIPPED / f"{path.stem}.tsp").is_file() and path.suffix in ("", ".tsp"):
        return SHIPPED / f"{path.stem}.tsp"
    raise OproError(f"instance file not found: {instance} (shipped instances: {', '.join(shipped_instances())})")


def load_tsplib(path: str | Path) -> TsplibInstance:
    """Parse a TSPLIB .tsp file with a NODE_COORD_SECTION; errors name the file and the 1-based line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise OproError(f"cannot read TSPLIB file {path}: {exc.strerror or exc}") from None

    def fail(lineno: int, msg: str) -> OproError:
        return OproError(f"{path.name} line {lineno}: {msg}")

    header: dict[str, str] = {}
    rows: list[tuple[float, float]] = []
    seen: set[int] = set()
    in_coords = False
    section_line = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.upper() == "EOF":
            break
        if in_coords:
            parts = line.split()
            try:
                if len(parts) != 3:
                    raise ValueError
                idx, x, y = int(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:
                raise fail(lineno, f'expected "index x y", got "{line[:60]}"') from None
            if not np.isfinite(x) or not np.isfinite(y):
                raise fail(lineno, f'non-finite coordinate in "{line[:60]}"')
            if idx != len(rows) + 1 or idx in seen:
                raise fail(lineno, f"expected node index {len(rows) + 1}, got {idx}")
            seen.add(idx)
            rows.append((x, y))
            continue
        if line.upper().startswith("NODE_COORD_SECTION"):
            in_coords, section_line = True, lineno
            continue
        if line.upper().endswith("_SECTION"):
            _edge_weight_type(header, path.name)  # an unsupported type is the clearer message
            raise fail(lineno, f"unsupported section {line[:60]!r} (only NODE_COORD_SECTION is supported)")
        kv = _parse_header(line)
        if kv is None:
            raise fail(lineno, f'expected "KEY : value" header, got "{line[:60]}"')
        header[kv[0]] = kv[1]

    if not in_coords:
        raise OproError(f"{path.name}: no NODE_COORD_SECTION")
    kind = _edge_weight_type(header, path.name)
    problem_type = header.get("TYPE", "TSP").upper()
    if problem_type != "TSP":
        raise OproError(f"{path.name}: unsupported TYPE {problem_type!r} (only TSP)")
    if "DIMENSION" not in header:
        raise OproError(f"{path.name}: missing DIMENSION")
    try:
        dim = int(header["DIMENSION"])
    except ValueError:
        raise OproError(f"{path.name}: DIMENSION is not an integer: {header['DIMENSION']!r}") from None
    if dim != len(rows):
        raise OproError(f"{path.name} line {section_line}: DIMENSION is {dim} but {len(rows)} nodes follow")
    if dim < 1:
        raise OproError(f"{path.name}: DIMENSION must be positive, got {dim}")
    return TsplibInstance(
        name=header.get("NAME", path.stem),
        coords=np.array(rows, dtype=np.float64).reshape(-1, 2),
        edge_weight_type=kind,
        comment=header.get("COMMENT", ""),
    )

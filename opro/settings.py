"""Settings checks shared by the run config, the problems and the LLM backends: ranges, types, seeds, TOML
files, base URLs.

A leaf: it imports nothing of opro but the error type, so `opro.config` and `opro/problems/` both build on it.
"""

from __future__ import annotations

import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opro.errors import OproError

#: Seeds are in [0, MAX_SEED]: llama.cpp samples with 32-bit seeds.
MAX_SEED = 2**32 - 1
#: Repeats of one configuration at most: the seeds of a group (--seeds x --instances), a sweep's cells.
MAX_REPEATS = 10_000


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric setting: low <= value <= high (None: unbounded); `above` makes low
    exclusive. Every numeric setting is also finite (no nan or inf)."""

    low: float | None = None
    high: float | None = None
    above: bool = False

    def check(self, label: str, value: float | None) -> None:
        """A one-line OproError when `value` (None: unset, always fine; a word such as "auto": checked where
        it is allowed) is outside the range."""
        if value is None or isinstance(value, str):
            return
        low_ok = self.low is None or (value > self.low if self.above else value >= self.low)
        if not low_ok or (self.high is not None and value > self.high):
            raise OproError(f"{label} must be {self.describe()}, got {value}")

    def describe(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.above else '['}{low}, {high}]"
        if self.low is not None:
            return f"{'>' if self.above else '>='} {low}"
        return f"<= {high}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_ranges(obj: Any, section: str) -> None:
    """Check the fields of a settings dataclass against its `LIMITS` (name -> Range)."""
    for name, allowed in getattr(obj, "LIMITS", {}).items():
        allowed.check(f"{section}.{name}" if section else name, getattr(obj, name))



def read_text(path: Any, label: str) -> str:
    """A UTF-8 text file (a Path or a package resource), with one-line errors for unreadable or non-UTF-8 ones."""
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise OproError(f"cannot read {label}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise OproError(f"{label} is not UTF-8 text (byte {error.start})") from None


def read_toml(path: Any, label: str) -> dict[str, Any]:
    """A TOML file (a Path or a package resource) parsed, with one-line errors for unreadable, non-UTF-8 or
    malformed files."""
    text = read_text(path, label)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise OproError(f"{label}: invalid TOML: {error}") from None


def check_type(label: str, value: Any, hint: Any) -> Any:
    """`value` if it fits the type `hint` (ints are accepted for floats), else a one-line OproError."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        origin = typing.get_origin(kind) or kind
        if kind is type(None) and value is None:
            return value
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise OproError(f"{label} must be a finite number, got {value!r}")
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool, dict, list) and isinstance(value, origin):
            return value
        if origin is typing.Any:
            return value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise OproError(f"{label} must be {names}, got {value!r}")


def check_base_url(label: str, url: str) -> str:
    """`url` if it is an http(s) URL with a host and a valid port, else a one-line OproError (credentials in it
    are not repeated)."""
    shown = re.sub(r"//[^/@]*@", "//***@", url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of 0-65535 or not a number)
    except ValueError as error:
        raise OproError(f"{label} {shown!r} is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OproError(f"{label} {shown!r} is not a valid URL: expected http(s)://HOST[:PORT]/PATH")
    return url

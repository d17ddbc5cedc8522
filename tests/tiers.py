"""The two test tiers. `make test` is the everyday tier: it deselects the tests marked `slow`. `make test-all`
(CI) runs everything with `OPRO_TEST_TIER=all`, where a missing extra that the `test` extra installs is an
error, not a skip, so a broken install cannot hide behind skipped tests."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ALL = os.environ.get("OPRO_TEST_TIER") == "all"


def require_extra(module: str) -> ModuleType:
    """`pytest.importorskip(module)` in the everyday tier; in `make test-all` the import must succeed."""
    if ALL:
        return importlib.import_module(module)
    return pytest.importorskip(module)


def examples(full: int) -> int:
    """Hypothesis examples for a property: `full` in `make test-all`, a fifth of it (at least 20) in `make test`."""
    return full if ALL else max(20, full // 5)

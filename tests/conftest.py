"""Shared fixtures. Tests run offline: hub look-ups fail at once instead of retrying."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout (CI has it; users do not)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The default GGUF, fetched and verified on first use (`opro fetch-model`)."""
    from opro.llm.models import default_model_path

    return default_model_path()


@pytest.fixture(scope="session", autouse=True)
def private_llm_cache(tmp_path_factory) -> Path:
    """Runs started by the tests (and their subprocesses) use a throwaway LLM-call cache, not the user's."""
    path = tmp_path_factory.mktemp("llm-cache") / "llm_cache.sqlite"
    os.environ["OPRO_LLM_CACHE"] = str(path)
    return path

"""Shared fixtures. The suite is hermetic: it runs offline (hub look-ups fail at once instead of retrying),
with its own opro and Hugging Face caches under pytest's temporary folder; the default GGUF is linked in
read-only from the user's cache (`make model` fetched it), so no test downloads. The expensive artefacts that
several modules share (the tiny model, its SFT warm start, the default model converted to HF) are built once
per session (per xdist worker; their users share an `xdist_group` so one worker builds them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from opro.llm.models import GGUF_NAME, cache_dir

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
USER_CACHE = cache_dir()  # read before the suite points OPRO_CACHE_DIR at its own folder

settings.register_profile("everyday", max_examples=25, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("all", max_examples=100, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("all" if os.environ.get("OPRO_TEST_TIER") == "all" else "everyday")

# Short meta-prompts (3 pairs shown) keep the tiny model's sequences short.
TINY_LINREG = """description = "linreg with short meta-prompts, for tests"
template = "linreg"
[problem]
kind = "linreg"
[loop]
top_k = 3
num_initial = 2
steps = 1
candidates_per_step = 2
max_tokens = 12
resample_rounds = 0
"""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout (CI has it; users do not)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory) -> Path:
    """`OPRO_CACHE_DIR` and `HF_HOME` for the whole session (subprocesses included): a folder of its own, with
    the user's default GGUF linked in when present. Nothing the suite does reads or writes the user's caches."""
    root = tmp_path_factory.mktemp("opro-cache")
    os.environ["OPRO_CACHE_DIR"] = str(root)
    os.environ["HF_HOME"] = str(root / "huggingface")
    user_model = USER_CACHE / "models" / GGUF_NAME
    if user_model.is_file():
        (root / "models").mkdir()
        (root / "models" / GGUF_NAME).symlink_to(user_model.resolve())
    return root


@pytest.fixture(scope="session")
def default_model(private_cache_dir) -> Path:
    """The default GGUF in the suite's cache (a link to the user's verified copy; never downloaded here)."""
    path = private_cache_dir / "models" / GGUF_NAME
    if not path.exists():
        pytest.fail(f"the default model is missing from {USER_CACHE / 'models'}: run `make model` first",
                    pytrace=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def private_llm_cache(tmp_path_factory) -> Path:
    """Runs started by the tests (and their subprocesses) use a throwaway LLM-call cache, not the user's."""
    path = tmp_path_factory.mktemp("llm-cache") / "llm_cache.sqlite"
    os.environ["OPRO_LLM_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def converted_default_model(default_model, private_cache_dir) -> tuple[Path, str]:
    """`opro rl convert` of the default GGUF, once, where `opro rl tune` expects it (`$OPRO_CACHE_DIR/hf/smollm2`);
    (the folder, the command's stdout)."""
    out = private_cache_dir / "hf" / "smollm2"
    done = subprocess.run([sys.executable, "-m", "opro.cli", "rl", "convert", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama of tests/tiny_lm.py, saved once; tests copy it before changing it."""
    from tests.tiny_lm import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm") / "base")


@pytest.fixture(scope="session")
def tiny_linreg(tmp_path_factory) -> Path:
    """A linreg preset with short meta-prompts (TINY_LINREG) as a file."""
    path = tmp_path_factory.mktemp("tiny-task") / "tiny-linreg.toml"
    path.write_text(TINY_LINREG)
    return path


@pytest.fixture(scope="session")
def warm(tmp_path_factory, tiny_model, tiny_linreg):
    """The tiny model after an SFT warm start on solver-made linreg answers (so GRPO groups differ in reward):
    (root, task, base, sft). The preset's line is kept (new noise only): the tiny model learns one answer
    format in 40 steps."""
    from opro.rl.train import SFTTrainConfig, train

    root = tmp_path_factory.mktemp("rl")
    out = train("sft", SFTTrainConfig(model=f"hf:{tiny_model}", output_dir=str(root / "sft"), task=str(tiny_linreg),
                                      steps=40, batch_size=4, learning_rate=1e-2, vary_lines=False))
    assert json.loads((out / "rl_train.json").read_text())["log"]
    return root, tiny_linreg, tiny_model, out

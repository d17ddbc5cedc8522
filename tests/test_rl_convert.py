"""`opro rl convert`: the default GGUF becomes a plain HF model directory that answers as llama.cpp does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import require_extra

require_extra("transformers")
require_extra("gguf")
from opro.llm.base import Request  # noqa: E402
from opro.llm.hf import HFLLM  # noqa: E402
from opro.llm.llamacpp import LlamaCppLLM  # noqa: E402

QUESTIONS = ("What is the capital of France? Answer in one sentence.", "Give me a list of three colors.")


def opro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_converted_default_model_answers_like_the_gguf(converted_default_model, default_model):
    out, stdout = converted_default_model  # `opro rl convert --out DIR`, run once per session
    assert f"hf:{out.resolve()}" in stdout  # out: the suite's cache links to the folder the command wrote
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"]
    source = Path(json.loads((out / "opro_source.json").read_text())["gguf"])
    assert source.resolve() == default_model.resolve()  # the suite's link to the user's GGUF

    requests = [Request(messages=({"role": "user", "content": q},), temperature=0.0, max_tokens=24, seed=0)
                for q in QUESTIONS]
    gguf, hf = LlamaCppLLM("smollm2"), HFLLM(str(out), threads=1)
    try:
        expected, got = gguf.generate(requests), hf.generate(requests)
    finally:
        gguf.close()
        hf.close()
    assert "Paris" in expected[0].text
    assert [c.text for c in got] == [c.text for c in expected]  # greedy: same weights, same template


def test_a_missing_gguf_is_one_line_and_exit_2(tmp_path):
    done = opro("rl", "convert", "--model", str(tmp_path / "nope.gguf"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "nope.gguf" in done.stderr
    assert not (tmp_path / "out").exists()

"""Fuzzing the text a model or a user hands the project: keys, hostile Unicode, `$...$`.

Properties, each over hypothesis-drawn text:
- a random API key, given to the openai: backend (and echoed by its server in every reply, in the base URL's
  query or as the URL's password), never appears in any file written (results and LLM cache);
- model replies of any Unicode, lone surrogates and control characters included, make a run that completes,
  writes valid UTF-8 and passes the resume checks;
- instructions holding `$...$` (and any other text) are drawn as written in the figures of a prompt run.
The runs are real runs of the loop; the server is tests/fake_openai.py and the optimizer of the Unicode
property a scripted LLM (the property is about what the framework writes, not about generation).
$OPRO_FUZZ_EXAMPLES caps the cases per test (default 25: each case is a run).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.analysis_runs as analysis_runs
from opro.analysis import load
from opro.config import build_config
from opro.plots import prompt_accuracy, save
from opro.results import RunDir
from opro.runner import start_run
from tests.fake_openai import FakeOpenAI
from tests.scripted_llm import ScriptedLLM

EXAMPLES = min(int(os.environ.get("OPRO_FUZZ_EXAMPLES", 25)), 25)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TINY = {"loop.steps": 1, "loop.candidates_per_step": 2, "loop.stop_at_optimum": False, "loop.resample_rounds": 0}

keys = st.builds(lambda prefix, body: prefix + body, st.sampled_from(["sk-", "sk-proj-", "key_", "tok-"]),
                 st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=12,
                         max_size=48))
anything = st.text(st.characters(codec=None, categories=None), max_size=60)  # surrogates and controls included
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4)
replies = st.lists(st.one_of(anything, st.builds(lambda a, s, b: f"{a}[16, 13]{s}{b}", anything, surrogates,
                                                  anything)), min_size=1, max_size=4)
dollars = st.builds(lambda a, b, c: f"{a}${b}${c}", anything, st.sampled_from(["\\boxed{}", "x^2", "", "\\frac{1",
                                                                               "5", "}{", "\\\\"]), anything)


@FUZZ
@given(key=keys, where=st.sampled_from(["api_key", "query", "password"]))
def test_a_random_key_never_reaches_a_file(key, where):
    def echo(body: dict, headers: dict) -> tuple[int, str]:  # a proxy that echoes headers in its replies
        return 200, f"[{int(body.get('seed') or 0) % 30}, 3] sent with {headers.get('authorization')} {key}"

    with tempfile.TemporaryDirectory() as folder, FakeOpenAI(echo) as server:
        root = Path(folder)
        url = {"api_key": server.url, "query": f"{server.url}?api_key={key}",
               "password": server.url.replace("http://", f"http://opro:{key}@")}[where]
        config = build_config("linreg", {**TINY, "optimizer.spec": "openai:m", "optimizer.base_url": url,
                                         "results_root": str(root / "results"),
                                         "llm.cache": str(root / "cache" / "llm.sqlite")})
        start_run(config, "r", api_key=key if where == "api_key" else None)
        written = [p for p in root.rglob("*") if p.is_file()]
        assert len(written) >= 6
        assert not [p for p in written if key.encode() in p.read_bytes() or key in str(p)]


@FUZZ
@given(texts=replies)
def test_hostile_unicode_in_replies_makes_a_run_that_writes_valid_utf8(texts):
    with tempfile.TemporaryDirectory() as folder:
        config = build_config("linreg", {**TINY, "results_root": folder})
        run = start_run(config, "r", optimizer=ScriptedLLM(texts))[0]
        for path in run.path.iterdir():
            path.read_bytes().decode("utf-8")
        RunDir.open(run.path).check_logs()  # what a resume checks first


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # random code points have no glyph
@settings(FUZZ, max_examples=min(EXAMPLES, 10))  # a figure each
@given(instructions=st.lists(st.one_of(dollars, anything.filter(str.strip)), min_size=3, max_size=6))
def test_instructions_with_dollars_are_drawn_as_written(instructions):
    with tempfile.TemporaryDirectory() as folder:
        analysis_runs.INSTRUCTIONS[:], saved = instructions, list(analysis_runs.INSTRUCTIONS)
        try:
            run = analysis_runs.write_prompt_run(Path(folder) / "gsm8k" / "g", steps=2)
        finally:
            analysis_runs.INSTRUCTIONS[:] = saved
        save(prompt_accuracy(load(run)), Path(folder) / "accuracy.png")  # the figure that quotes instructions

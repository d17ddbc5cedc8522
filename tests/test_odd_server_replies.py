"""Odd fields in a server's reply: token counts that are not counts (a string, a negative number) are recorded
as unknown and counted by the client's own estimate, with one warning; choice indexes that are not distinct
counts keep the server's order. Never a traceback, and the token budget still counts."""

from __future__ import annotations

import json

import pytest

from opro.llm import Request
from opro.llm.openai_backend import OpenAILLM, estimate_tokens
from tests.fake_openai import FakeOpenAI
from tests.fake_openai import completion as chat_body

PROMPT = "Name a colour."


def ask(server: FakeOpenAI, count: int = 1, **options) -> tuple[OpenAILLM, list]:
    llm = OpenAILLM("fake", base_url=server.url, max_attempts=1, **options)
    try:
        return llm, llm.generate([Request(messages=({"role": "user", "content": PROMPT},), seed=i)
                                  for i in range(count)])
    finally:
        llm.close()


@pytest.mark.parametrize("usage", [{"prompt_tokens": "lots", "completion_tokens": -5},
                                   {"prompt_tokens": -1, "completion_tokens": "3"},
                                   {"prompt_tokens": None, "completion_tokens": True}])
def test_usage_that_is_not_a_count_is_estimated_with_one_warning(usage, capsys):
    with FakeOpenAI(lambda body, headers: chat_body(["A deep blue."], usage)) as server:
        llm, completions = ask(server, count=3)
    assert [(c.prompt_tokens, c.completion_tokens) for c in completions] == \
        [(estimate_tokens(PROMPT), estimate_tokens("A deep blue."))] * 3
    assert all(c.meta["usage"] == "estimated" for c in completions)
    assert llm.completion_tokens == 3 * estimate_tokens("A deep blue.") > 0  # so a token budget can trigger
    warnings = capsys.readouterr().err.splitlines()
    odd = [k for k, v in usage.items() if v is not None]
    assert len(warnings) == len(odd) and all(w.startswith("opro: warning: openai:fake: the server's usage.")
                                             and "recorded as unknown" in w for w in warnings)


def test_good_usage_is_taken_as_the_server_counts_it(capsys):
    with FakeOpenAI(lambda body, headers: chat_body(["Red."], {"prompt_tokens": 12, "completion_tokens": 2})) as server:
        _, (completion,) = ask(server)
    assert (completion.prompt_tokens, completion.completion_tokens, completion.meta) == (12, 2, {})
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("indexes", [["zero", "one"], [None, None], [0, 0]])
def test_odd_choice_indexes_keep_the_server_order(indexes, capsys):
    usage = {"prompt_tokens": 5, "completion_tokens": 4}
    with FakeOpenAI(lambda body, headers: chat_body(["Red.", "Blue."], usage, indexes)) as server:
        _, completions = ask(server, count=2, use_n=True)
    assert [c.text for c in completions] == ["Red.", "Blue."]
    assert "choice indexes" in capsys.readouterr().err
    assert json.dumps(server.requests[0]["n"]) == "2"


def test_a_run_records_estimated_usage_as_such(tmp_path, capsys):
    from opro.config import build_config
    from opro.runner import start_run

    usage = {"prompt_tokens": "lots", "completion_tokens": -3}
    with FakeOpenAI(lambda body, headers: chat_body(["[16, 13]"], usage)) as server:
        config = build_config("linreg", {"optimizer.spec": "openai:fake", "optimizer.base_url": server.url,
                                         "loop.steps": 1, "loop.candidates_per_step": 2, "llm.cache": False,
                                         "results_root": str(tmp_path)})
        run, summary = start_run(config, "r")
    outputs = [o for line in (run.path / "llm_calls.jsonl").read_text().splitlines()
               for o in json.loads(line)["outputs"]]
    assert outputs and all(o["usage"] == "estimated" and o["completion_tokens"] == estimate_tokens("[16, 13]")
                           for o in outputs)
    assert summary["completion_tokens"] > 0 and summary["prompt_tokens"] > 0

"""Ctrl-C: each command's line names what that command can do next, and an interrupted prompt run ends in that
one line (its requests in flight are cancelled and awaited before the client's event loop closes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from opro.cli import INTERRUPTED, interrupted_line
from opro.llm import Request
from opro.llm.openai_backend import OpenAILLM
from tests.fake_openai import FakeOpenAI
from tests.fake_openai import completion as chat_body


def slow(seconds: float):
    def answer(body: dict, headers: dict) -> dict:
        time.sleep(seconds)
        return chat_body(["The answer is 2."], {"prompt_tokens": 5, "completion_tokens": 4})
    return answer


def test_closing_the_client_cancels_and_awaits_the_requests_in_flight():
    with FakeOpenAI(slow(2.0)) as server:
        llm = OpenAILLM("m", base_url=server.url, concurrency=8)
        ended: list[str] = []

        def ask() -> None:
            try:
                llm.generate([Request(messages=({"role": "user", "content": str(i)},), seed=i) for i in range(8)])
            except BaseException as error:  # noqa: BLE001 (what the waiting caller gets is the point)
                ended.append(type(error).__name__)

        waiting = threading.Thread(target=ask)
        waiting.start()
        while len(server.requests) < 4:
            time.sleep(0.01)
        loop = llm._loop
        llm.close()
        waiting.join(timeout=30)
    assert not waiting.is_alive() and ended == ["CancelledError"]  # not left waiting on a closed loop
    assert [task for task in asyncio.all_tasks(loop) if not task.done()] == []


def test_ctrl_c_during_a_prompt_run_is_one_line(tmp_path):
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i}+1?", "answer": str(i + 1)}) + "\n"
                            for i in range(40)))
    with FakeOpenAI(slow(0.3)) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "k",
               "OPRO_LLM_CACHE": str(tmp_path / "c.sqlite"), "OPRO_SCORE_CACHE": str(tmp_path / "s.sqlite")}
        run = subprocess.Popen([sys.executable, "-m", "opro.cli", "run", "--task", "gsm8k", "--data", str(data),
                                "--optimizer", "openai:m", "--scorer", "openai:m", "--steps", "3", "--quiet",
                                "--results", str(tmp_path / "r")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        while len(server.requests) < 9 and run.poll() is None:  # the scorer's requests are in flight
            time.sleep(0.02)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130
    assert [line for line in stderr.splitlines() if line] == [interrupted_line(["run"])]  # (click ends ^C's line)


@pytest.mark.parametrize("command", sorted(INTERRUPTED))
def test_each_command_says_what_it_can_do_after_ctrl_c(command):
    line = interrupted_line([command, "--some-option"])
    assert line.startswith("opro: interrupted; ")
    assert ("--resume" in line) == (command == "run")  # only `opro run` has --resume


def test_the_line_follows_the_command_not_its_options():
    assert interrupted_line(["--quiet", "baselines"]) == "opro: interrupted; " + INTERRUPTED["baselines"]
    assert interrupted_line(["tasks"]) == "opro: interrupted"


def test_ctrl_c_during_baselines_does_not_mention_resume(tmp_path):
    env = {**os.environ, "OPRO_CACHE_DIR": str(tmp_path / "cache")}  # no cached optimum: the exact solver runs
    baselines = subprocess.Popen([sys.executable, "-m", "opro.cli", "baselines", "--n", "150", "--seed", "7"],
                                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(5)  # past the imports: solving
    baselines.send_signal(signal.SIGINT)
    _, stderr = baselines.communicate(timeout=60)
    assert baselines.returncode == 130
    assert [line for line in stderr.splitlines() if line] == [interrupted_line(["baselines"])]

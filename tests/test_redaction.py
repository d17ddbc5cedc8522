"""The API key never reaches a file: not in a traceback, a base URL, a group record, a log or a cache.

A sweep runs the four ways a key used to reach a results folder against a scripted OpenAI-compatible server
on 127.0.0.1 (tests/fake_openai.py), and a group run takes a key in its URL's query; then every file under
the results root and the cache folder is searched for each secret, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from opro.redact import MARKER, redact, redact_data, remember, url_credentials
from tests.fake_openai import FakeOpenAI, linreg_reply
from tests.rundir_tools import opro

KEY = "sk-test-4f9a1c77e2b0d35a"
PASSWORD = "pw-hidden-8e21f0"
TOKEN = "qs-hidden-5b7d93"


def server_reply(body: dict, headers: dict) -> tuple[int, str]:
    """openai:reject refuses the key and echoes it (HTTP 401); openai:echo answers with the request's
    Authorization header (a proxy that echoes headers); any other model proposes a linreg pair."""
    if body["model"] == "reject":
        return 401, f"Incorrect API key provided: {KEY}. You can find your API key at ..."
    if body["model"] == "echo":
        return 200, f"[15, 14] sent with {headers.get('authorization')}"
    return linreg_reply(body, headers)


def files_holding(secret: str, *folders: Path) -> list[str]:
    """The files whose name or content holds `secret`."""
    return [str(p) for folder in folders for p in folder.rglob("*")
            if secret in str(p) or p.is_file() and secret.encode() in p.read_bytes()]


def test_no_secret_reaches_the_results_or_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPRO_LLM_CACHE", str(cache / "llm_cache.sqlite"))
    with FakeOpenAI(server_reply) as server:
        host = server.url.removeprefix("http://")
        sweep = tmp_path / "keys.toml"
        sweep.write_text(f"""
task = "linreg"
results = "{tmp_path / 'results'}"
[set]
"loop.steps" = 1
"loop.candidates_per_step" = 2
"loop.stop_at_optimum" = false
[[cells]]
"optimizer.spec" = "openai:reject"
"optimizer.base_url" = "{server.url}"
[[cells]]
"optimizer.spec" = "openai:m"
"optimizer.base_url" = "http://opro:{PASSWORD}@{host}"
[[cells]]
"optimizer.spec" = "openai:m"
"optimizer.base_url" = "{server.url}?api_key={TOKEN}"
[[cells]]
"optimizer.spec" = "openai:echo"
"optimizer.base_url" = "{server.url}"
""")
        done = subprocess.run([sys.executable, "-m", "opro.cli", "sweep", str(sweep), "--workers", "2", "--quiet"],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path)
        record = json.loads((tmp_path / "results" / "sweeps" / "keys" / "sweep.json").read_text())
        states = sorted(cell["state"] for cell in record["cells"])
        assert states == ["done", "done", "done", "failed"], done.stderr
        failed = next(cell for cell in record["cells"] if cell["state"] == "failed")
        assert "AuthenticationError" in failed["traceback"] and f"provided: {MARKER}" in failed["traceback"]
        group = opro("run", "--task", "linreg", "--optimizer", "openai:m", "--base-url",
                     f"{server.url}?api_key={TOKEN}", "--seeds", "0-1", "--steps", "1", "--candidates", "2",
                     "--results", str(tmp_path / "results"), "--run-id", "g", "--quiet")
        assert group.code == 0, group
    for secret in (KEY, PASSWORD, TOKEN):
        assert not files_holding(secret, tmp_path / "results", cache), secret
        assert secret not in done.stdout + done.stderr + group.stdout + group.stderr
    echoed = (next((tmp_path / "results" / "sweeps" / "keys").glob("*echo*")) / "llm_calls.jsonl").read_text()
    assert f"sent with Bearer {MARKER}" in echoed  # the completion is kept, its key masked
    config = json.loads((tmp_path / "results" / "linreg" / "g" / "seed0" / "config.json").read_text())
    assert config["config"]["optimizer"]["base_url"] == f"{server.url}?api_key={MARKER}"


def test_a_resume_takes_the_masked_credentials_from_the_environment(tmp_path, monkeypatch):
    with FakeOpenAI() as server:
        full = f"{server.url}?api_key={TOKEN}"
        first = opro("run", "--task", "linreg", "--optimizer", "openai:m", "--base-url", full, "--steps", "1",
                     "--candidates", "2", "--results", str(tmp_path), "--run-id", "r", "--quiet", "--no-cache")
        assert first.code == 0, first
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        refused = opro("run", "--resume", str(tmp_path / "linreg" / "r"), "--steps", "2", "--quiet")
        assert refused.code == 2 and "had credentials, which are never stored; set OPENAI_BASE_URL" in \
            refused.lines[0]
        monkeypatch.setenv("OPENAI_BASE_URL", full)
        assert opro("run", "--resume", str(tmp_path / "linreg" / "r"), "--steps", "2", "--quiet").code == 0
        assert server.requests[-1]["model"] == "m"


def test_what_is_masked():
    remember("sk-short")  # 8 characters: masked
    remember("x")  # too short to be taken for a key: masking it would garble every text
    assert redact("a sk-short b x") == f"a {MARKER} b x"
    assert redact("http://me:pw@host:8/v1?api_key=k1&model=gpt&sig=s2") == \
        f"http://{MARKER}@host:8/v1?api_key={MARKER}&model=gpt&sig={MARKER}"
    assert redact("see https://example.org/a?author=me&page=2") == "see https://example.org/a?author=me&page=2"
    assert redact_data({"u": ["http://a:b@h"], "n": 1}) == {"u": [f"http://{MARKER}@h"], "n": 1}
    assert url_credentials("http://u:pw@h/v1?access_token=t&model=m") == ["pw", "t"]

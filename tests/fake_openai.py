"""A scripted OpenAI-compatible chat server on 127.0.0.1 (stdlib only): a test double for what the framework
does with a server's answers (files, locks, errors, odd replies), not for generation, which
tests/test_openai_backend.py tests against the real embedded model.

`reply(body, headers)` decides each answer: `(status, text)` (a 200 status gets `text` as the message content
of a chat completion, any other status gets `text` as the error message), or a whole chat.completion body as
a dict (see `completion`) to show how the client meets odd replies. While `gate` is clear, requests wait.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict, dict], "tuple[int, str] | dict[str, Any]"]


def linreg_reply(body: dict, headers: dict) -> tuple[int, str]:
    """A valid linreg proposal that depends on the request's seed (distinct candidates)."""
    seed = int(body.get("seed") or 0)
    return 200, f"[{seed % 40}, {seed % 7}]"


def completion(texts: list[str], usage: dict[str, Any] | None = None, indexes: list[Any] | None = None,
               ) -> dict[str, Any]:
    """A chat.completion body with one choice per text (indexes 0.. unless given) and `usage`."""
    indexes = indexes if indexes is not None else list(range(len(texts)))
    return {"id": "fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in zip(indexes, texts, strict=True)],
            **({"usage": usage} if usage is not None else {})}


class FakeOpenAI:
    """`with FakeOpenAI(reply) as server:` then `--base-url server.url`; `requests` holds the bodies and
    `headers` the headers (names in lower case) received, in order; `waiting` is set while a request waits on
    the closed `gate`."""

    def __init__(self, reply: Reply = linreg_reply) -> None:
        self.reply = reply
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.gate, self.waiting = threading.Event(), threading.Event()
        self.gate.set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]  # read by _Handler
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-answer (e.g. interrupted) is not the test's concern


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.requests.append(body)
        fake.headers.append(headers)
        if not fake.gate.is_set():
            fake.waiting.set()
            fake.gate.wait()
        answer = fake.reply(body, headers)
        if isinstance(answer, dict):
            status, payload = 200, answer
        else:
            status, text = answer
            payload = completion([text], {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
            if status != 200:
                payload = {"error": {"message": text, "type": "invalid_request_error", "code": status}}
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

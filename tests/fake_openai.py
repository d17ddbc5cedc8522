"""A scripted OpenAI-compatible chat server on 127.0.0.1 (stdlib only): a test double for what the framework
does with a server's answers (files, locks, errors), not for generation, which tests/test_openai_backend.py
tests against the real embedded model.

`reply(body, headers) -> (status, text)` decides each answer: a 200 status gets `text` as the message content
of a chat completion, any other status gets `text` as the error message. While `gate` is clear, requests wait.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[dict, dict], tuple[int, str]]


def linreg_reply(body: dict, headers: dict) -> tuple[int, str]:
    """A valid linreg proposal that depends on the request's seed (distinct candidates)."""
    seed = int(body.get("seed") or 0)
    return 200, f"[{seed % 40}, {seed % 7}]"


class FakeOpenAI:
    """`with FakeOpenAI(reply) as server:` then `--base-url server.url`; `requests` holds the bodies and
    headers (names in lower case) received, `waiting` is set while a request waits on the closed `gate`."""

    def __init__(self, reply: Reply = linreg_reply) -> None:
        self.reply = reply
        self.requests: list[tuple[dict, dict]] = []
        self.gate, self.waiting = threading.Event(), threading.Event()
        self.gate.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.requests.append((body, headers))
        if not fake.gate.is_set():
            fake.waiting.set()
            fake.gate.wait()
        status, text = fake.reply(body, headers)
        if status == 200:
            payload = {"id": "fake", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
        else:
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

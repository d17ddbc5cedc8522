"""A fake OpenAI-compatible server on 127.0.0.1 (stdlib only): a test tool that answers every chat request
with the JSON a test gives it, to show how the client meets odd replies. It does not generate; real
generation is tested against llama.cpp's server (tests/test_openai_backend.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def reply(texts: list[str], usage: dict[str, Any] | None = None, indexes: list[Any] | None = None) -> dict[str, Any]:
    """A chat.completion body with one choice per text (indexes 0.. unless given) and `usage`."""
    indexes = indexes if indexes is not None else list(range(len(texts)))
    return {"id": "fake", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in zip(indexes, texts, strict=True)],
            **({"usage": usage} if usage is not None else {})}


class FakeOpenAI:
    """`with FakeOpenAI(lambda body: reply(["hi"])) as server:` then use `server.url` as the base URL;
    `answer(request_body)` makes each reply. `requests` holds the request bodies received."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer, self.requests = answer, []
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
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-answer (e.g. interrupted) is not the test's concern


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        fake.requests.append(body)
        data = json.dumps(fake.answer(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass

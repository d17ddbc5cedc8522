"""A fault-injecting HTTP proxy: a test tool for opro's retry policy, not part of the framework.

It listens on 127.0.0.1 in front of an OpenAI-compatible server. With probability `fault_rate` a request
gets a fault, drawn by a seeded RNG, instead of the upstream's answer:
  "429"      HTTP 429 with `Retry-After: <retry_after>`
  "500"      HTTP 500
  "stall"    no answer for `stall_seconds` (past the client's timeout), then the connection is dropped
  "garbled"  the upstream's 200 answer cut in half: truncated, undecodable JSON
Which request gets which fault depends on arrival order, so only the RNG stream is reproducible.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("429", "500", "stall", "garbled")


class FaultProxy:
    """`with FaultProxy("http://127.0.0.1:8080", fault_rate=0.3) as proxy:` then use `proxy.url`.
    `injected` counts the faults served, `forwarded` the requests that reached the upstream, `max_in_flight`
    the most requests it held at once."""

    def __init__(self, upstream: str, fault_rate: float = 0.3, seed: int = 0, faults: tuple[str, ...] = FAULTS,
                 retry_after: str = "1", stall_seconds: float = 5.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.fault_rate, self.faults = fault_rate, faults
        self.retry_after, self.stall_seconds = retry_after, stall_seconds
        self.injected: Counter[str] = Counter()
        self.forwarded = self.in_flight = self.max_in_flight = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]  # read by _Handler
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def draw(self) -> str | None:
        """The fault for the next request, or None to pass it through."""
        with self._lock:
            fault = self._rng.choice(self.faults) if self._rng.random() < self.fault_rate else None
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type, body) of the upstream's answer."""
        with self._lock:
            self.forwarded += 1
        connection = http.client.HTTPConnection(*self.upstream, timeout=300)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", "application/json"), response.read()
        finally:
            connection.close()


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        proxy.enter(1)
        self._held = True
        try:
            self._answer(proxy)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout) before the answer came
        finally:
            self._release()

    def _release(self) -> None:
        """No longer in flight: called before the answer is written, so the client cannot overlap it."""
        if self._held:
            self._held = False
            self.server.proxy.enter(-1)  # type: ignore[attr-defined]

    def _answer(self, proxy: FaultProxy) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = proxy.draw()
        if fault == "stall":
            time.sleep(proxy.stall_seconds)
            self.close_connection = True
            return
        if fault in ("429", "500"):
            message = b'{"error": {"message": "injected fault", "type": "server_error"}}'
            extra = {"Retry-After": proxy.retry_after} if fault == "429" else {}
            return self._reply(int(fault), "application/json", message, extra)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "accept")}
        status, content_type, payload = proxy.forward(self.command, self.path, body, headers)
        if fault == "garbled" and status == 200:
            payload = payload[: len(payload) // 2]
        self._reply(status, content_type, payload)

    def _reply(self, status: int, content_type: str, payload: bytes, extra: dict[str, str] | None = None) -> None:
        self._release()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

"""Serving plumbing shared by the fake APIs: a ThreadingHTTPServer on 127.0.0.1 with an
ephemeral port (tests run in parallel), in a daemon thread, usable as a context manager."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class LoopbackFake:
    """Base of FakeSlack, FakeX and FakeOpenAI. Subclasses set the two classes below."""

    server_class: type[ThreadingHTTPServer]
    handler_class: type[BaseHTTPRequestHandler]

    def _init_serving(self, lock: Any) -> None:
        self._lock = lock
        self._changed = threading.Condition(lock)  # notified on every recorded call
        self._stopping = threading.Event()  # releases hung or delayed handlers
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0) -> Self:
        """Serve on an ephemeral port, or on `port` again after stop() (a service that
        went away and comes back at the same address)."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        server = self.server_class(("127.0.0.1", port), self.handler_class)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung requests are released (their clients see a dropped socket)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._server.server_address[1])


class QuietHandler(BaseHTTPRequestHandler):
    """Request handler base of the fakes: sends a body of any kind, logs nothing."""

    # HTTP/1.0: one request per connection, so no handler thread lingers on keep-alive at stop().
    protocol_version = "HTTP/1.0"
    # Some SDKs only read JSON when the content type ends in "json" (openai does).
    json_content_type = "application/json; charset=utf-8"

    def do_GET(self) -> None:
        self.handle_request("GET")

    def do_POST(self) -> None:
        self.handle_request("POST")

    def handle_request(self, method: str) -> None:
        raise NotImplementedError

    def read_body(self) -> bytes:
        """The request body, sent with a Content-Length or chunked (httpx may chunk)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def send_body(self, status: int, body: object, headers: dict[str, str]) -> None:
        """JSON for dicts and lists, text for str, raw bytes otherwise; None is empty."""
        if body is None:
            payload, content_type = b"", self.json_content_type
        elif isinstance(body, dict | list):
            payload, content_type = json.dumps(body).encode(), self.json_content_type
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            assert isinstance(body, bytes)
            payload, content_type = body, "application/octet-stream"
        self.send_response(status)
        extra = dict(headers)
        if not any(k.lower() == "content-type" for k in extra):
            extra["Content-Type"] = content_type
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

"""A fake of Slack's Socket Mode websocket side, driven through the real slack_sdk clients.

Socket Mode as slack_sdk speaks it (``slack_sdk/socket_mode``), and as this fake serves it:

1. The app calls the Web API method ``apps.connections.open`` with its app-level token
   (``Authorization: Bearer xapp-...``) and gets ``{"ok": true, "url": "wss://..."}``. A bot
   token (``xoxb-``) is refused with ``not_allowed_token_type``. :meth:`FakeSocketMode.install`
   teaches a :class:`~tests.fakes.slack.FakeSlack` to answer it with this fake's ``ws_url``.
2. The app opens the websocket; the server sends ``{"type": "hello", ...}``. The aiohttp
   client sends a ping (``sdk-ping-pong:<time>``) at once and every ``ping_interval``; the
   server answers each with a pong carrying the same data.
3. The server sends envelopes: ``{"envelope_id", "type": "interactive" | "slash_commands" |
   "events_api", "accepts_response_payload", "payload"}`` (events also carry
   ``retry_attempt``/``retry_reason``). The app acks each with ``{"envelope_id": ...}`` plus an
   optional ``"payload"`` (a modal's ``response_action``, say) within 3 seconds.
4. The server may send ``{"type": "disconnect", "reason": "refresh_requested" | "warning" |
   "link_disabled"}``: the client opens a new URL and reconnects.

The server runs on 127.0.0.1 with an ephemeral port, in its own thread and event loop; every
public method is meant to be called from the test's thread::

    with FakeSocketMode() as socket, start_fake_slack() as slack:
        socket.install(slack)
        ...  # start the app with slack.api_url and an xapp- token
        socket.wait_connected()
        envelope_id = socket.send_envelope("interactive", {"type": "block_actions", ...})
        ack = socket.wait_ack(envelope_id)

Every frame either way is recorded as a :class:`Frame`. Anything the app gets wrong about the
protocol (an ack for an unknown envelope, a second ack, a payload on an envelope that accepts
none, text that is not JSON) is collected in :attr:`FakeSocketMode.protocol_errors`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import pytest
from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.slack import FakeSlack

__all__ = [
    "ACK_DEADLINE",
    "Envelope",
    "FakeSocketMode",
    "FakeSocketModeTimeout",
    "Frame",
    "fake_socket_mode",
    "start_fake_socket_mode",
]

#: Slack shows an error (interactive, commands) or retries (events) after this many seconds.
ACK_DEADLINE = 3.0
ENVELOPE_TYPES = frozenset({"interactive", "slash_commands", "events_api"})
DISCONNECT_REASONS = frozenset({"warning", "refresh_requested", "link_disabled"})


class FakeSocketModeTimeout(AssertionError):
    """A wait_*() gave up before the expected frame arrived."""


@dataclass(frozen=True)
class Frame:
    """One websocket frame. ``direction`` is from the server's point of view.

    ``kind`` is ``"text"`` (``data`` is the parsed JSON object, or the raw str if it was not
    JSON), ``"ping"``/``"pong"`` (``data`` is bytes) or ``"close"`` (``data`` is the close code).
    """

    connection: int
    direction: Literal["sent", "received"]
    kind: Literal["text", "ping", "pong", "close"]
    data: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Envelope:
    """An envelope the server sent, and the acks the app sent back for it."""

    envelope_id: str
    type: str
    connection: int
    message: dict[str, Any]
    sent_at: float
    acks: list[dict[str, Any]] = field(default_factory=list)
    acked_at: float | None = None

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


@dataclass
class _Connection:
    id: int
    ws: web.WebSocketResponse
    hello_sent: bool = False
    closed: bool = False
    close_code: int | None = None  # the code of the close frame the app sent, if it sent one


class FakeSocketMode:
    """Fake Socket Mode server: ``ws://127.0.0.1:PORT/link`` in a background thread."""

    def __init__(self, *, app_id: str = "A0SOCIALCARE") -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified on every recorded change
        self._frames: list[Frame] = []
        self._connections: dict[int, _Connection] = {}
        self._envelopes: dict[str, Envelope] = {}
        self._errors: list[str] = []
        self._connection_ids = itertools.count(1)
        self._open_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("FakeSocketMode already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeSocketMode", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call(self._serve(), timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        app.router.add_get("/link/", self._link)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        """Close every open websocket (code 1001, going away) and stop serving."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if self._runner is not None:
            try:
                self._call(self._shutdown(), timeout=10)
            finally:
                self._runner = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = None
        self._port = None
        with self._changed:
            self._changed.notify_all()

    async def _shutdown(self) -> None:
        with self._lock:
            open_ws = [c.ws for c in self._connections.values() if not c.closed]
        for ws in open_ws:
            await ws.close(code=1001, message=b"server stopping")
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> Self:
        return self if self._loop is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSocketMode is not running")
        return self._port

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def install(self, fake_slack: FakeSlack) -> None:
        """Make ``fake_slack`` answer ``apps.connections.open`` with this server's URL.

        Like Slack, only an app-level token (``xapp-``) may open a connection.
        """

        def connections_open(params: dict[str, Any]) -> dict[str, Any]:
            opens = [c for c in fake_slack.calls if c.method == "apps.connections.open"]
            headers = opens[-1].headers if opens else {}
            token = headers.get("authorization", "").partition(" ")[2] or params.get("token", "")
            with self._changed:
                self._open_requests += 1
                self._changed.notify_all()
            if not str(token).startswith("xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.ws_url}

        fake_slack.set_handler("apps.connections.open", connections_open)

    # ----------------------------------------------------------------- inspection

    @property
    def frames(self) -> list[Frame]:
        """Every frame so far, both directions, in order."""
        with self._lock:
            return list(self._frames)

    def received(self) -> list[Any]:
        """Data of every text frame the app sent (parsed JSON), in order."""
        with self._lock:
            return [f.data for f in self._frames if f.direction == "received" and f.kind == "text"]

    def envelope(self, envelope_id: str) -> Envelope:
        with self._lock:
            return self._envelopes[envelope_id]

    @property
    def protocol_errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    @property
    def connection_count(self) -> int:
        """How many websockets were ever opened."""
        with self._lock:
            return len(self._connections)

    @property
    def open_connections(self) -> list[int]:
        with self._lock:
            return [c.id for c in self._connections.values() if not c.closed]

    def close_code(self, connection: int) -> int | None:
        """The code of the close frame the app sent on ``connection`` (None: it sent none)."""
        with self._lock:
            return self._connections[connection].close_code

    # ----------------------------------------------------------------- waiting

    def _wait(self, what: str, ready: Callable[[], Any], timeout: float) -> Any:
        result: Any = None

        def check() -> bool:
            nonlocal result
            result = ready()
            return bool(result)

        with self._changed:
            if not self._changed.wait_for(check, timeout=timeout):
                seen = [(f.connection, f.direction, f.kind, f.data) for f in self._frames]
                raise FakeSocketModeTimeout(
                    f"timed out after {timeout}s waiting for {what}; frames: {seen}"
                )
        return result

    def wait_connected(self, timeout: float = 5.0, *, count: int = 1) -> int:
        """Block until ``count`` connections have been greeted; return the newest one's id."""

        def greeted() -> int | None:
            ids = [c.id for c in self._connections.values() if c.hello_sent]
            return max(ids) if len(ids) >= count else None

        return int(self._wait(f"{count} connection(s)", greeted, timeout))

    def wait_ack(self, envelope_id: str, timeout: float = ACK_DEADLINE) -> dict[str, Any]:
        """Block until the app acks ``envelope_id``; return the ack message as sent.

        The default timeout is Slack's own deadline: a later ack is as good as none.
        """
        with self._lock:
            if envelope_id not in self._envelopes:
                raise KeyError(f"no envelope {envelope_id!r} was sent")

        def acked() -> dict[str, Any] | None:
            acks = self._envelopes[envelope_id].acks
            return acks[0] if acks else None

        return dict(self._wait(f"an ack of {envelope_id}", acked, timeout))

    def wait_frame(
        self, predicate: Callable[[Frame], bool], timeout: float = 5.0, what: str = "a frame"
    ) -> Frame:
        """Block until a recorded frame matches ``predicate``; return the first such frame."""

        def found() -> Frame | None:
            return next((f for f in self._frames if predicate(f)), None)

        frame: Frame = self._wait(what, found, timeout)
        return frame

    def wait_closed(self, connection: int, timeout: float = 5.0) -> int | None:
        """Block until ``connection`` is closed; return the app's close code (or None)."""

        def closed() -> bool:
            return self._connections[connection].closed

        self._wait(f"connection {connection} to close", closed, timeout)
        return self.close_code(connection)

    def wait_open_requests(self, count: int, timeout: float = 5.0) -> None:
        """Block until ``apps.connections.open`` was answered ``count`` times (see install)."""
        self._wait(f"{count} apps.connections.open", lambda: self._open_requests >= count, timeout)

    # ----------------------------------------------------------------- sending

    def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        connection: int | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope on ``connection`` (default: the newest open one); return its id.

        ``accepts_response_payload`` defaults to Slack's: true for interactive and
        slash_commands, false for events_api (which also carries the retry fields).
        """
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}; one of {sorted(ENVELOPE_TYPES)}")
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = type != "events_api"
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            message |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        conn = self._pick(connection)
        with self._changed:
            if envelope_id in self._envelopes:
                raise ValueError(f"envelope {envelope_id!r} was already sent")
            # Registered before sending, so an ack can never arrive for an unknown envelope.
            self._envelopes[envelope_id] = Envelope(
                envelope_id, type, conn.id, message, time.monotonic()
            )
        self._call(self._send_json(conn, message), timeout=timeout)
        return envelope_id

    def send_disconnect(
        self, reason: str = "refresh_requested", *, connection: int | None = None
    ) -> None:
        """Ask the app to reconnect, as Slack does before it recycles a connection."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"unknown disconnect reason {reason!r}")
        conn = self._pick(connection)
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": f"applink-fake-{conn.id}"},
        }
        self._call(self._send_json(conn, message), timeout=5)

    def send_raw(self, message: dict[str, Any], *, connection: int | None = None) -> None:
        """Send any JSON message as is (for protocol edge cases)."""
        self._call(self._send_json(self._pick(connection), message), timeout=5)

    def _pick(self, connection: int | None) -> _Connection:
        with self._lock:
            if connection is not None:
                conn = self._connections[connection]
                if conn.closed:
                    raise RuntimeError(f"connection {connection} is closed")
                return conn
            open_ = [c for c in self._connections.values() if c.hello_sent and not c.closed]
            if not open_:
                raise RuntimeError("no open Socket Mode connection (call wait_connected first)")
            return max(open_, key=lambda c: c.id)

    def _call(self, coro: Any, *, timeout: float) -> Any:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("FakeSocketMode is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call FakeSocketMode from the test's thread, not its own")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # ----------------------------------------------------------------- serving

    def _record(self, frame: Frame) -> None:
        with self._changed:
            self._frames.append(frame)
            self._changed.notify_all()

    async def _send_json(self, conn: _Connection, message: dict[str, Any]) -> None:
        self._record(Frame(conn.id, "sent", "text", message))
        await conn.ws.send_str(json.dumps(message))

    async def _link(self, request: web.Request) -> web.StreamResponse:
        # autoping off: pings are recorded and answered below, as Slack's server does.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        with self._changed:
            conn = _Connection(next(self._connection_ids), ws)
            self._connections[conn.id] = conn
            live = sum(not c.closed for c in self._connections.values())
        hello = {
            "type": "hello",
            "num_connections": live,
            "debug_info": {
                "host": f"applink-fake-{conn.id}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.app_id},
        }
        try:
            await self._send_json(conn, hello)
            with self._changed:
                conn.hello_sent = True
                self._changed.notify_all()
            await self._receive(conn)
        finally:
            with self._changed:
                conn.closed = True
                self._changed.notify_all()
        return ws

    async def _receive(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.TEXT:
                self._on_text(conn, msg.data)
            elif msg.type == WSMsgType.PING:
                self._record(Frame(conn.id, "received", "ping", msg.data))
                self._record(Frame(conn.id, "sent", "pong", msg.data))
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                self._record(Frame(conn.id, "received", "pong", msg.data))
            elif msg.type == WSMsgType.CLOSE:
                # aiohttp's autoclose has already answered with a close frame.
                with self._changed:
                    conn.close_code = int(msg.data)
                self._record(Frame(conn.id, "received", "close", int(msg.data)))
                return
            else:  # CLOSING, CLOSED, ERROR, BINARY: Slack sends and expects text only
                if msg.type == WSMsgType.BINARY:
                    self._error(f"connection {conn.id}: binary frame")
                    continue
                return

    def _on_text(self, conn: _Connection, text: str) -> None:
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        self._record(Frame(conn.id, "received", "text", data if data is not None else text))
        if not isinstance(data, dict) or not isinstance(data.get("envelope_id"), str):
            self._error(f"connection {conn.id}: not an ack: {text!r}")
            return
        unexpected = set(data) - {"envelope_id", "payload"}
        with self._changed:
            envelope = self._envelopes.get(data["envelope_id"])
            if envelope is None:
                self._errors.append(f"ack for an unknown envelope: {text!r}")
            else:
                if envelope.acks:
                    self._errors.append(f"envelope {envelope.envelope_id} acked again")
                else:
                    envelope.acked_at = time.monotonic()
                if "payload" in data and not envelope.message["accepts_response_payload"]:
                    self._errors.append(
                        f"envelope {envelope.envelope_id} accepts no response payload: {text!r}"
                    )
                if "payload" in data and not isinstance(data["payload"], dict):
                    self._errors.append(f"ack payload is not an object: {text!r}")
                envelope.acks.append(data)
            if unexpected:
                self._errors.append(f"ack has unexpected fields {sorted(unexpected)}: {text!r}")
            self._changed.notify_all()

    def _error(self, text: str) -> None:
        with self._changed:
            self._errors.append(text)
            self._changed.notify_all()


def start_fake_socket_mode() -> FakeSocketMode:
    return FakeSocketMode().start()


@pytest.fixture
def fake_socket_mode() -> Iterator[FakeSocketMode]:
    """A running FakeSocketMode, stopped after the test. Import into a conftest to share it."""
    fake = start_fake_socket_mode()
    try:
        yield fake
    finally:
        fake.stop()

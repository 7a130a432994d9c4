"""The accept loop shared by ``tcp-listen://`` and ``tap+tcp://``: a listening socket, a selector that a stop can
wake, and a thread per connection (``Session``) so one slow or stuck till never holds up another.

``device.status`` without ``peer`` is about the transport (listening or not); with ``peer`` it is about that one
connection (``open`` when it is accepted, ``closed`` with a ``reason`` when it ends).

**Connection order.** The pipeline has one decoder per device and direction, so the copies of several
connections must not interleave: a till that connects once per receipt may open the next connection while the
bridge's thread for the last one has not yet handed over its final bytes. Copies (and ``peer`` statuses) of a
connection therefore reach the sink only once every connection accepted before it has ended; until then they
are held (up to ``held_max_bytes`` per connection). Only the *copies* wait: forwarding never does.

The wait is bounded in bytes, not in time: copies of a later connection are held up to ``held_max_bytes``; past
that they are dropped, counted and reported on that connection's ``closed`` status (``dropped_bytes``,
``dropped_chunks``), so the bridge sees the loss, not only the log. A connection never *gives way* to a later one
while it lives: splicing a later connection's bytes into the middle of an earlier one's stream would join two
half messages into one, which the decoders cannot read and the recorder cannot redact safely (a card number
split across the join). A half-closed session ends after ``half_close_s`` without bytes.

Connections that cannot be served (more than ``max_connections`` live, or a tap whose device cannot be reached)
are closed at once; their ``closed`` status takes its place in the same order, because a ``closed`` status ends
the device's decoder streams and must not cut a live connection's stream in the middle.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
import selectors
import socket
import threading
import time

from bridge.capture import CLOSED, CaptureSink
from bridge.transports._common import Waker, listen, peer_name, safe_chunk, safe_status
from bridge.transports.base import Transport

#: The accept loop also looks at ``stop`` this often, in case nobody calls ``interrupt`` (a safety net only:
#: ``interrupt`` wakes it at once).
POLL_S = 0.25
#: Connections served at once per listening transport. A till has a handful; connections that end (a till's FIN
#: with no answer pending, a half-closed tap session after ``half_close_s``) leave this count, so the bound only
#: guards the process against a runaway client (each connection costs one or two threads and one or two file
#: descriptors: 128 tap sessions are 256 threads and 256 descriptors, well inside a default ``ulimit -n`` of 1024
#: with a few devices). Past it a new connection is closed at once and reported (``closed``, ``reason``
#: ``refused: …``).
MAX_CONNECTIONS = 128
#: Seconds without bytes after which a half-closed tap session (one side sent FIN, the other keeps its side open)
#: is closed, so a device that never closes cannot pile up sessions. Long, because a till may half-close and then
#: wait for a slow answer (a long print, a PIN entry): cutting that would change the till's traffic. Query key
#: ``half_close``.
HALF_CLOSE_S = 300.0
#: How long ``release`` waits for a connection's threads after shutting its sockets down.
JOIN_S = 1.0
#: Copies held per connection while an earlier connection is still open (module docstring); past it the copies
#: are dropped (counted, logged, reported on the connection's ``closed`` status), never the traffic.
HELD_MAX_BYTES = 4 * 1024 * 1024
#: Bytes per ``recv``: large enough for tens of MB/s through a tap, one syscall per burst at till rates.
RECV_BYTES = 256 * 1024


class Session:
    """One accepted connection: its sockets, its threads, and which end closed first."""

    def __init__(self, peer: str, sockets: list[socket.socket]):
        self.peer = peer
        self.sockets = sockets
        self.threads: list[threading.Thread] = []
        self.reason: str | None = None
        self._lock = threading.Lock()
        self._running = 0
        self.ended = False
        self.held: list[tuple] = []  # ("chunk", t_ns, direction, data) / ("status", t_ns, state, detail)
        self.held_bytes = 0
        self.dropped_bytes = 0
        self.dropped_chunks = 0
        self.last_active = time.monotonic()  # when the last bytes were read from either side
        self.half_closed_at: float | None = None  # when one side sent FIN (a tap keeps the other direction)
        self.lingered = False  # the tap closed it after ``half_close_s`` without bytes past a half-close

    def active(self) -> None:
        self.last_active = time.monotonic()

    def half_closed(self) -> None:
        self.half_closed_at = time.monotonic()

    def note(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason

    def note_lingered(self, seconds: float) -> None:
        with self._lock:
            first = self.reason or "one side closed the connection"
            self.reason = f"{first}; no bytes for {seconds:g} s after that, so the tap closed it"

    def start(self, targets) -> None:
        self._running = len(targets)
        for target in targets:
            t = threading.Thread(target=target, name=f"tillwire-{self.peer}", daemon=True)
            self.threads.append(t)
        for t in self.threads:
            t.start()

    def thread_done(self) -> bool:
        """Called by each thread as it ends; True for the last one (which closes the session)."""
        with self._lock:
            self._running -= 1
            return self._running == 0

    def shutdown(self) -> None:
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


class ListeningTransport(Transport):
    """Binds ``self.listen_host:self.listen_port`` in ``open``; ``accepted`` handles each connection."""

    listen_host: str
    listen_port: int
    max_connections: int = MAX_CONNECTIONS
    half_close_s: float = HALF_CLOSE_S
    held_max_bytes: int = HELD_MAX_BYTES

    def __init__(self, device: str, url: str):
        super().__init__(device, url)
        self._listener: socket.socket | None = None
        self._waker: Waker | None = None  # made by open, closed by release
        self._sessions: list[Session] = []  # in accept order, until they have ended and been flushed
        self._sessions_lock = threading.Lock()
        self.address: tuple | None = None  # the bound address once open (the real port when the URL says 0)

    # ---------------------------------------------------------------- Transport hooks

    def open(self) -> None:
        self._waker = Waker()
        self._listener = listen(self.listen_host, self.listen_port)
        self._listener.setblocking(False)  # ready by the selector, yet gone by accept() (a reset) must not block
        self.address = self._listener.getsockname()

    def pump(self, sink: CaptureSink, stop: threading.Event) -> str | None:
        listener = self._listener
        self._waker.fired.clear()
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ, "accept")
            sel.register(self._waker, selectors.EVENT_READ, "wake")
            while not stop.is_set():
                ready = sel.select(POLL_S)
                self.tend(sink)
                for key, _ in ready:
                    if key.data == "wake":
                        self._waker.drain()
                        continue
                    if stop.is_set():
                        break
                    try:
                        conn, addr = listener.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                        continue
                    if self.live_sessions() >= self.max_connections:
                        conn.close()
                        log.warning("device %s: connection from %s refused: %d connections are already open",
                                    self.device, peer_name(addr), self.max_connections)
                        self.closed_at_once(peer_name(addr), sink, reason=f"refused: {self.max_connections} "
                                            f"connections are already open (the most a {self.scheme} serves at once)")
                        continue
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    reason = self.accepted(conn, peer_name(addr), sink, stop)
                    if reason:
                        return reason
        return None

    def release(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.shutdown()
        for session in sessions:
            for t in session.threads:
                if t is not threading.current_thread():
                    t.join(JOIN_S)

    def interrupt(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.wake()
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.shutdown()

    # ---------------------------------------------------------------- for subclasses

    @abstractmethod
    def accepted(self, conn: socket.socket, peer: str, sink: CaptureSink, stop: threading.Event) -> str | None:
        """Serve one till connection until it ends; return the reason it ended, or None."""

    def add_session(self, session: Session) -> None:
        with self._sessions_lock:
            self._sessions.append(session)

    def closed_at_once(self, peer: str, sink: CaptureSink, **detail) -> None:
        """A connection closed as soon as it was accepted: its ``closed`` status, in connection order."""
        session = Session(peer, [])
        self.add_session(session)
        self.end_session(session, sink, CLOSED, transport=self.describe(), peer=peer, **detail)

    def capture(self, session: Session, sink: CaptureSink, t_ns: int, direction: str, data: bytes) -> None:
        """Hand a copy to the sink in connection order (module docstring); never blocks on the sink."""
        with self._sessions_lock:
            if self._sessions and self._sessions[0] is session:
                safe_chunk(sink, t_ns, self.device, direction, data)
            elif session.held_bytes + len(data) <= self.held_max_bytes:
                session.held.append(("chunk", t_ns, direction, data))
                session.held_bytes += len(data)
            else:
                if not session.dropped_bytes:
                    log.warning("device %s: connection %s sends while an earlier one is open; its copies past "
                                "%d bytes are dropped (the traffic is not) and counted on its closed status",
                                self.device, session.peer, self.held_max_bytes)
                session.dropped_bytes += len(data)
                session.dropped_chunks += 1

    def tend(self, sink: CaptureSink) -> None:
        """Called by the accept loop at least every ``POLL_S``: close half-closed sessions that have had no bytes
        for ``half_close_s``."""
        now = time.monotonic()
        lingering = []
        with self._sessions_lock:
            for s in self._sessions:
                if (s.half_closed_at is not None and not s.ended and not s.lingered
                        and now - max(s.last_active, s.half_closed_at) >= self.half_close_s):
                    s.lingered = True
                    lingering.append(s)
        for s in lingering:
            s.note_lingered(self.half_close_s)
            s.shutdown()

    def session_status(self, session: Session, sink: CaptureSink, state: str, **detail) -> None:
        """A ``peer`` status, in connection order like the copies."""
        with self._sessions_lock:
            if session in self._sessions and self._sessions[0] is not session:
                session.held.append(("status", time.time_ns(), state, detail))
                return
        safe_status(sink, self.device, state, **detail)

    def end_session(self, session: Session, sink: CaptureSink, state: str, **detail) -> None:
        """The session is over: its ``closed`` status, then the copies of the next connections come through."""
        if session.dropped_bytes:
            detail = dict(detail, dropped_bytes=session.dropped_bytes, dropped_chunks=session.dropped_chunks)
        self.session_status(session, sink, state, **detail)
        with self._sessions_lock:
            session.ended = True
            self._advance(sink)

    def _advance(self, sink: CaptureSink) -> None:
        """With the lock held: ended connections at the head hand over their copies and leave; the copies held
        by the new head come through."""
        while self._sessions and self._sessions[0].ended:
            self._flush(self._sessions.pop(0), sink)
        if self._sessions:
            self._flush(self._sessions[0], sink)

    def _flush(self, session: Session, sink: CaptureSink) -> None:
        held, session.held, session.held_bytes = session.held, [], 0
        for kind, t_ns, a, b in held:
            if kind == "chunk":
                safe_chunk(sink, t_ns, self.device, a, b)
            else:
                try:
                    sink.status(t_ns, self.device, a, **b)
                except Exception:  # noqa: BLE001 - the sink must not raise; it changes nothing here
                    log.exception("device %s: the capture sink raised on a status", self.device)

    def live_sessions(self) -> int:
        with self._sessions_lock:
            return sum(1 for s in self._sessions if not s.ended)


log = logging.getLogger("tillwire.transports")

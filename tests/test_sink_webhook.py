"""The webhook sink against a real HTTP receiver on loopback (docs/bridge/sinks-webhook.md).

The sink is built from a ``[[sinks]]`` table exactly as ``tillwire run`` builds it and driven the way the runner
drives it: ``connect``, then ``send(batch) -> Outcome``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest

from bridge.config import ConfigError, _Table
from bridge.sinks.base import REALTIME, Outgoing, SinkUnavailable
from bridge.sinks.settings import context_for, parse_sink
from bridge.sinks.webhook import (REFUSED, RETRY_BACKOFF, RETRY_LATER, SIGNATURE_HEADER, WebhookSink, batch_key,
                                  retry_after_s, status_action, verify_signature)
from bridge_helpers import PREFIX, free_port
from protocols.events import envelope, pack, to_json_view
from webhook_receiver import Reply, WebhookReceiver, cloudevents, envelopes, self_signed_cert

SRC = PREFIX + "scanner"
TOKEN = "tok-3f9a1c2b7d5e4f60"
HMAC_SECRET = "whsec-8d7c6b5a4f3e2d1c"


def outgoing(seq: int, src: str = SRC, type_: str = "scanner.data") -> Outgoing:
    ts = 1_795_000_000_000_000_000 + seq * 1_000_000
    body = {"type": type_, "data": {"code": f"40063813339{seq:02d}", "symbology": "EAN13", "raw": b"\x02" + bytes([seq])}}
    return Outgoing(rowid=seq, src=src, seq=seq, type=type_, ts=ts, envelope=pack(envelope(src, seq, ts, body)),
                    cls=REALTIME)


def events(*seqs: int) -> list[Outgoing]:
    return [outgoing(s) for s in seqs]


@pytest.fixture
def rx():
    with WebhookReceiver() as receiver:
        yield receiver


def sink_settings(tmp_path, url: str, env: dict | None = None, **keys):
    """A ``[[sinks]]`` table parsed as ``tillwire run`` parses it (``SinkSettings``; the sink's own in ``.options``)."""
    t = _Table(tmp_path / "bridge.toml", "sinks[0]", {"name": "hook", "kind": "webhook", "url": url, **keys})
    settings = parse_sink(t, tmp_path, env or {})
    t.done()
    return settings


@pytest.fixture
def make_sink(tmp_path):
    """Build (and later close) a webhook sink from ``[[sinks]]`` keys; it is connected unless told not to."""
    made = []

    def build(url: str, *, env: dict | None = None, connect: bool = True, **keys) -> WebhookSink:
        settings = sink_settings(tmp_path, url, env, **keys)
        sink = WebhookSink(settings.name, settings.options,
                           context_for("test-store", "till-1", PREFIX, settings.options))
        made.append(sink)
        if connect:
            sink.connect(settings.connect_timeout_s)
        return sink

    yield build
    for sink in made:
        sink.close()


def config_error(tmp_path, env: dict | None = None, **keys) -> str:
    t = _Table(tmp_path / "bridge.toml", "sinks[0]", {"name": "hook", "kind": "webhook", **keys})
    with pytest.raises(ConfigError) as info:
        parse_sink(t, tmp_path, env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- request formats

def test_single_mode_posts_one_json_cloudevent_per_event_with_its_idempotency_key(rx, make_sink):
    sink = make_sink(rx.url)
    batch = events(1, 2, 3)
    outcome = sink.send(batch)
    assert (outcome.done, outcome.parked, outcome.retry) == (3, (), None)
    requests = rx.wait_for(3)
    assert [r.method for r in requests] == ["POST"] * 3
    assert [r.path for r in requests] == ["/hook"] * 3
    assert [r.headers["idempotency-key"] for r in requests] == [f"{SRC}:1", f"{SRC}:2", f"{SRC}:3"]
    assert {r.content_type for r in requests} == {"application/cloudevents+json"}
    assert {r.connection for r in requests} == {1}, "one kept-alive connection"
    ces = [ce for r in requests for ce in cloudevents(r)]
    assert [(ce["specversion"], ce["source"], ce["id"], ce["type"]) for ce in ces] == [
        ("1.0", SRC, str(ev.seq), "scanner.data") for ev in batch]
    assert [envelopes(r)[0] for r in requests] == [to_json_view(ev.event()) for ev in batch]


def test_single_mode_msgpack_bodies_carry_the_envelope_with_its_bytes(rx, make_sink):
    sink = make_sink(rx.url, format="msgpack")
    batch = events(7, 8)
    assert sink.send(batch).done == 2
    requests = rx.wait_for(2)
    assert {r.content_type for r in requests} == {"application/cloudevents+msgpack"}
    assert [envelopes(r)[0] for r in requests] == [ev.event() for ev in batch]
    assert envelopes(requests[0])[0]["data"]["raw"] == b"\x02\x07"


@pytest.mark.parametrize("fmt, content_type, view", [
    ("json", "application/cloudevents-batch+json", to_json_view),
    ("msgpack", "application/cloudevents-batch+msgpack", lambda e: e),
])
def test_batch_mode_posts_the_whole_batch_once(rx, make_sink, fmt, content_type, view):
    sink = make_sink(rx.url, mode="batch", format=fmt)
    batch = events(1, 2, 3, 4)
    assert sink.send(batch).done == 4
    (request,) = rx.wait_for(1)
    assert request.content_type == content_type
    assert request.headers["idempotency-key"] == batch_key(batch)
    assert [ce["id"] for ce in cloudevents(request)] == ["1", "2", "3", "4"], "each event keeps its own id"
    assert envelopes(request) == [view(ev.event()) for ev in batch]


def test_a_retried_batch_keeps_its_idempotency_key_and_another_batch_gets_another(rx, make_sink):
    sink = make_sink(rx.url, mode="batch")
    rx.script(Reply.ok(500))
    first = events(1, 2, 3)
    assert sink.send(first).retry is not None
    assert sink.send(first).done == 3
    assert sink.send(events(4, 5)).done == 2
    keys = [r.headers["idempotency-key"] for r in rx.wait_for(3)]
    assert keys[0] == keys[1] == batch_key(first)
    assert keys[2] != keys[0]
    assert keys[0] == "batch-" + hashlib.sha256(f"{SRC}:1\n{SRC}:2\n{SRC}:3".encode()).hexdigest()[:32]


def test_bearer_token_and_extra_headers_are_sent(rx, make_sink, tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    sink = make_sink(rx.url, bearer_token_file="token", headers={"X-Store": "store-1", "X-Tenant": "acme"})
    sink.send(events(1))
    (request,) = rx.wait_for(1)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert (request.headers["x-store"], request.headers["x-tenant"]) == ("store-1", "acme")
    assert request.headers["user-agent"].startswith("tillwire")


# ---------------------------------------------------------------- signatures

def test_the_signature_verifies_with_the_documented_recipe(rx, make_sink):
    sink = make_sink(rx.url, secret_env="HOOK_SECRET", env={"HOOK_SECRET": HMAC_SECRET})
    sink.send(events(1))
    (request,) = rx.wait_for(1)
    header = request.headers[SIGNATURE_HEADER.lower()]
    # The recipe of docs/bridge/sinks-webhook.md, by hand: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(HMAC_SECRET.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - time.time()) < 60
    assert verify_signature(HMAC_SECRET, header, request.body)


def test_the_signature_fails_with_a_wrong_secret_a_changed_body_or_an_old_timestamp(rx, make_sink):
    sink = make_sink(rx.url, mode="batch", secret_env="HOOK_SECRET", env={"HOOK_SECRET": HMAC_SECRET})
    sink.send(events(1, 2))
    (request,) = rx.wait_for(1)
    header = request.headers[SIGNATURE_HEADER.lower()]
    stamp = int(header.split(",")[0][2:])
    assert verify_signature(HMAC_SECRET, header, request.body)
    assert not verify_signature("not-the-secret", header, request.body)
    assert not verify_signature(HMAC_SECRET, header, request.body.replace(b'"seq":2', b'"seq":3'))
    assert not verify_signature(HMAC_SECRET, header, request.body, now=stamp + 301), "outside the replay window"
    assert verify_signature(HMAC_SECRET, header, request.body, now=stamp + 299)
    assert not verify_signature(HMAC_SECRET, None, request.body)
    assert not verify_signature(HMAC_SECRET, "v1=abc", request.body)


def test_the_verification_snippet_in_the_docs_accepts_and_refuses(rx, make_sink):
    doc = (Path(__file__).resolve().parent.parent / "docs/bridge/sinks-webhook.md").read_text()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "sinks-webhook.md", "exec"), namespace)  # noqa: S102 - our own documentation
    make_sink(rx.url, secret_env="S", env={"S": HMAC_SECRET}).send(events(1))
    (request,) = rx.wait_for(1)
    header = request.headers[SIGNATURE_HEADER.lower()]
    assert namespace["verify"](HMAC_SECRET.encode(), header, request.body)
    assert not namespace["verify"](b"wrong", header, request.body)
    assert not namespace["verify"](HMAC_SECRET.encode(), header, request.body + b" ")


def test_no_signature_header_without_a_secret(rx, make_sink):
    make_sink(rx.url).send(events(1))
    assert SIGNATURE_HEADER.lower() not in rx.wait_for(1)[0].headers


# ---------------------------------------------------------------- what the answers mean

@pytest.mark.parametrize("status, action", [
    (200, None), (201, None), (202, None), (204, None),
    (429, RETRY_LATER), (503, RETRY_LATER),
    (408, RETRY_BACKOFF), (409, RETRY_BACKOFF), (500, RETRY_BACKOFF), (502, RETRY_BACKOFF), (504, RETRY_BACKOFF),
    (301, RETRY_BACKOFF),
    (401, RETRY_BACKOFF), (403, RETRY_BACKOFF), (407, RETRY_BACKOFF),
    (404, RETRY_BACKOFF), (405, RETRY_BACKOFF), (410, RETRY_BACKOFF), (415, RETRY_BACKOFF),
    (400, REFUSED), (406, REFUSED), (413, REFUSED), (422, REFUSED),
])
def test_status_table(status, action):
    assert status_action(status) == action


@pytest.mark.parametrize("status", [201, 202, 204])
def test_any_2xx_is_delivered(rx, make_sink, status):
    rx.set_default(Reply.ok(status))
    assert make_sink(rx.url).send(events(1, 2)).done == 2


def test_429_with_retry_after_seconds_gives_retry_after_s(rx, make_sink):
    rx.script(Reply.ok(200), Reply.retry_after(429, 2))
    outcome = make_sink(rx.url).send(events(1, 2, 3))
    assert outcome.done == 1, "the event before the 429 is delivered; the rest waits"
    assert outcome.retry.after_s == 2
    assert outcome.retry.reason == "HTTP 429 Too Many Requests"
    assert not outcome.retry.reconnect
    assert len(rx.requests) == 2, "nothing is sent after a 429"


def test_retry_after_as_an_http_date(rx, make_sink):
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=20)
    rx.script(Reply.retry_after(503, when))
    outcome = make_sink(rx.url).send(events(1))
    assert outcome.done == 0
    assert outcome.retry.after_s == pytest.approx(when.timestamp() - time.time(), abs=1.5)


def test_503_without_retry_after_leaves_the_wait_to_the_runner(rx, make_sink):
    rx.script(Reply.ok(503))
    outcome = make_sink(rx.url).send(events(1))
    assert (outcome.done, outcome.retry.after_s) == (0, None)


@pytest.mark.parametrize("status", [500, 502, 408, 409])
def test_server_errors_408_and_409_retry_with_backoff(rx, make_sink, status):
    rx.script(Reply.ok(status))
    outcome = make_sink(rx.url).send(events(1, 2))
    assert outcome.done == 0
    assert outcome.retry.after_s is None
    assert outcome.retry.reason.startswith(f"HTTP {status}")
    assert outcome.parked == ()


def test_retry_after_values():
    assert retry_after_s("120") == 120
    assert retry_after_s(" 0 ") == 0
    assert retry_after_s("1.5") == 1.5
    assert retry_after_s(None) is None
    assert retry_after_s("-3") is None
    assert retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0, "a date in the past: at once"
    # against the server's own Date header: the till's clock (here: 2015) does not matter
    assert retry_after_s("Wed, 21 Oct 2015 07:28:30 GMT", date="Wed, 21 Oct 2015 07:28:00 GMT") == 30
    assert retry_after_s("Wed, 21 Oct 2015 07:28:30 GMT", now=0.0, date="garbage") == 86_400.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert retry_after_s("99999999") == 86_400, "capped at a day"


def test_422_parks_the_event_with_the_response_and_the_rest_is_delivered(rx, make_sink):
    rx.script(Reply.ok(200), Reply.refuse(422, b'{"error":"unknown symbology"}'))
    outcome = make_sink(rx.url).send(events(1, 2, 3))
    assert outcome.done == 3 and outcome.retry is None
    (parked,) = outcome.parked
    assert (parked.index, parked.status, parked.reason) == (1, 422, "HTTP 422 Unprocessable Entity")
    assert parked.response == b'{"error":"unknown symbology"}'
    assert len(rx.wait_for(3)) == 3


def test_the_reason_line_names_the_status_also_when_the_server_sends_no_phrase(rx, make_sink):
    rx.script(Reply(422, reason=""), Reply(500, reason="Backend Fell Over"), Reply(599, reason=""))
    sink = make_sink(rx.url)
    assert sink.send(events(1)).parked[0].reason == "HTTP 422 Unprocessable Entity"
    assert sink.send(events(2)).retry.reason == "HTTP 500 Backend Fell Over"
    assert sink.send(events(2)).retry.reason == "HTTP 599"


def test_the_kept_response_is_at_most_4_kib(rx, make_sink):
    rx.script(Reply.refuse(400, b"x" * 100_000, "text/plain"))
    outcome = make_sink(rx.url).send(events(1, 2))
    assert outcome.done == 2
    assert outcome.parked[0].response == b"x" * 4096
    assert len(rx.wait_for(2)) == 2, "the long answer was not read to its end; the next event went on a new connection"


def test_a_refused_batch_is_sent_again_event_by_event_and_only_the_refused_one_is_parked(rx, make_sink):
    def refuse_seq_3(request):
        if request.content_type == "application/cloudevents-batch+json":
            return Reply.refuse(400, b'{"error":"event 3 is invalid"}')
        if envelopes(request)[0]["seq"] == 3:
            return Reply.refuse(422, b'{"error":"bad code"}')
        return None

    rx.set_rule(refuse_seq_3)
    batch = events(1, 2, 3, 4)
    outcome = make_sink(rx.url, mode="batch").send(batch)
    assert outcome.done == 4 and outcome.retry is None
    (parked,) = outcome.parked
    assert (parked.index, parked.status, parked.response) == (2, 422, b'{"error":"bad code"}')
    requests = rx.wait_for(5)
    assert [r.content_type for r in requests] == ["application/cloudevents-batch+json"] + [
        "application/cloudevents+json"] * 4
    assert [r.headers["idempotency-key"] for r in requests[1:]] == [ev.key for ev in batch]


def test_a_refused_batch_whose_singles_hit_a_server_error_stops_there(rx, make_sink):
    rx.script(Reply.refuse(413, b"too large"), Reply.ok(200), Reply.ok(500))
    outcome = make_sink(rx.url, mode="batch").send(events(1, 2, 3))
    assert outcome.done == 1
    assert outcome.retry.reason == "HTTP 500 Internal Server Error"
    assert outcome.parked == ()


# ---------------------------------------------------------------- connections and bounded waits

def test_a_hanging_server_costs_at_most_timeout_s(rx, make_sink):
    rx.script(Reply.hang(30))
    sink = make_sink(rx.url, timeout_s=0.5)
    started = time.monotonic()
    outcome = sink.send(events(1, 2))
    elapsed = time.monotonic() - started
    assert outcome.done == 0
    assert outcome.retry.reconnect, "after a timeout the connection's state is unknown"
    assert "no answer" in outcome.retry.reason and "timeout_s=0.5" in outcome.retry.reason
    assert elapsed < 3, f"the send took {elapsed:.1f} s with timeout_s = 0.5 against a 30 s hang"
    assert len(rx.requests) == 1


def test_an_answer_trickling_in_byte_by_byte_still_ends_at_timeout_s(rx, make_sink):
    rx.script(Reply.trickle(0.05))  # ~100 bytes, 5 s in all; each byte well within a per-receive timeout
    sink = make_sink(rx.url, timeout_s=0.5)
    started = time.monotonic()
    outcome = sink.send(events(1))
    elapsed = time.monotonic() - started
    assert outcome.done == 0 and outcome.retry.reconnect
    assert "no answer" in outcome.retry.reason
    assert elapsed < 3, f"the send took {elapsed:.1f} s with timeout_s = 0.5"


def test_a_connection_close_answer_is_read_to_its_end(rx, make_sink):
    rx.script(Reply(200, b'{"ok":true}', (("Connection", "close"),)), Reply(201, b"", (("Connection", "close"),)))
    sink = make_sink(rx.url)
    assert sink.send(events(1, 2, 3)).done == 3
    assert [r.connection for r in rx.wait_for(3)] == [1, 2, 3]


def test_interrupt_cuts_a_wait_short(rx, make_sink):
    rx.script(Reply.hang(30))
    sink = make_sink(rx.url, timeout_s=60)
    result = {}
    sender = threading.Thread(target=lambda: result.setdefault("outcome", sink.send(events(1))))
    sender.start()
    rx.wait_for(1)
    sink.interrupt()
    sender.join(timeout=10)
    assert not sender.is_alive()
    assert result["outcome"].done == 0 and "interrupted" in result["outcome"].retry.reason


def test_a_connection_closed_without_an_answer_is_retried_with_a_new_connection(rx, make_sink):
    rx.script(Reply.dropped())
    sink = make_sink(rx.url)
    outcome = sink.send(events(1))
    assert outcome.done == 0 and outcome.retry.reconnect
    assert "without an answer" in outcome.retry.reason
    sink.close()
    sink.connect(5)
    assert sink.send(events(1)).done == 1
    first, second = rx.wait_for(2)
    assert first.connection != second.connection


def test_a_kept_alive_connection_the_server_dropped_is_replaced_at_once(rx, make_sink):
    sink = make_sink(rx.url)
    assert sink.send(events(1)).done == 1
    rx.script(Reply.dropped())  # the next request on the old connection dies as an idle close would
    assert sink.send(events(2)).done == 1
    requests = rx.wait_for(3)
    assert [r.headers["idempotency-key"] for r in requests] == [f"{SRC}:1", f"{SRC}:2", f"{SRC}:2"]
    assert requests[1].connection == requests[0].connection != requests[2].connection


def test_nothing_listening_is_sink_unavailable_with_one_line(make_sink):
    port = free_port()
    with pytest.raises(SinkUnavailable) as info:
        make_sink(f"http://127.0.0.1:{port}/hook")
    assert str(info.value) == f"cannot connect to 127.0.0.1:{port}: Connection refused"


def test_a_server_gone_between_sends_gives_a_retry_with_reconnect(make_sink):
    receiver = WebhookReceiver()
    try:
        sink = make_sink(receiver.url)
        assert sink.send(events(1)).done == 1
    finally:
        receiver.close()
    outcome = sink.send(events(2))
    assert outcome.done == 0 and outcome.retry.reconnect
    assert "Connection refused" in outcome.retry.reason


# ---------------------------------------------------------------- TLS

def test_tls_verification_is_on_by_default_and_a_private_ca_can_be_trusted(tmp_path, make_sink):
    cert, key = self_signed_cert(tmp_path / "tls")
    with WebhookReceiver(tls=(cert, key)) as rx:
        with pytest.raises(SinkUnavailable) as info:
            make_sink(rx.url)
        assert "not trusted" in str(info.value) and "tls_ca_file" in str(info.value)
        sink = make_sink(rx.url, tls_ca_file=str(cert))
        assert sink.send(events(1, 2)).done == 2
        assert len(rx.wait_for(2)) == 2


def test_tls_verify_false_connects_and_says_so(tmp_path, make_sink):
    cert, key = self_signed_cert(tmp_path / "tls")
    with WebhookReceiver(tls=(cert, key)) as rx:
        sink = make_sink(rx.url, tls_verify=False)
        assert "TLS NOT VERIFIED" in sink.describe()
        assert sink.send(events(1)).done == 1


def test_https_to_a_server_that_speaks_plain_http_fails_cleanly(rx, make_sink):
    with pytest.raises(SinkUnavailable) as info:
        make_sink(rx.url.replace("http://", "https://"))
    assert str(info.value).startswith(f"TLS handshake with 127.0.0.1:{rx.port} failed")


# ---------------------------------------------------------------- configuration

def test_describe_names_the_destination_without_query_or_credentials(tmp_path, make_sink):
    (tmp_path / "token").write_text(TOKEN)
    sink = make_sink("http://127.0.0.1:9/in?key=abc123", connect=False, bearer_token_file="token",
                     secret_env="S", env={"S": HMAC_SECRET}, mode="batch", format="msgpack")
    assert sink.describe() == "webhook POST http://127.0.0.1:9/in (batch, msgpack, signed)"
    plain = make_sink("http://10.1.2.3:8080/in", connect=False)
    assert plain.describe() == "webhook POST http://10.1.2.3:8080/in (single, json, UNENCRYPTED)"


@pytest.mark.parametrize("keys, env, expected", [
    ({"url": "ftp://h/x"}, {}, "sinks[0].url: must start with http:// or https://"),
    ({"url": "http://user:pw@h/x"}, {}, "sinks[0].url: must not carry user:password@"),
    ({"url": "http://h/x", "mode": "bulk"}, {}, "sinks[0].mode: must be 'single' or 'batch', not 'bulk'"),
    ({"url": "http://h/x", "format": "xml"}, {}, "sinks[0].format: must be 'json' or 'msgpack', not 'xml'"),
    ({"url": "http://h/x", "timeout_s": 0}, {}, "sinks[0].timeout_s: must be between 0.05 and 600"),
    ({"url": "http://h/x", "secret": HMAC_SECRET}, {}, "sinks[0].secret: a secret never goes into the config file"),
    ({"url": "http://h/x", "bearer_token": TOKEN}, {}, "sinks[0].bearer_token: a secret never goes into the config"),
    ({"url": "http://h/x", "secret_env": "NOPE"}, {}, "sinks[0].secret_env: environment variable NOPE is not set"),
    ({"url": "http://h/x", "bearer_token_file": "missing"}, {}, "sinks[0].bearer_token_file: no such file"),
    ({"url": "http://h/x", "headers": {"Authorization": "Basic eA=="}}, {}, "'Authorization' is set by the sink"),
    ({"url": "http://h/x", "headers": {"X-Api-Key": "k"}}, {}, "'X-Api-Key' looks like a credential"),
    ({"url": "http://h/x", "headers": {"X-A": "a\r\nb"}}, {}, "must be a one-line string"),
    ({"url": "http://h/x", "headers": {"bad name": "a"}}, {}, "is not a valid HTTP header name"),
    ({"url": "http://h/x", "tls_ca_file": "ca.pem"}, {}, "sinks[0].tls_ca_file: TLS settings need an https:// url"),
    ({"url": "https://h/x", "tls_ca_file": "ca.pem"}, {}, "sinks[0].tls_ca_file: no such file"),
    ({"url": "http://h/x#top"}, {}, "sinks[0].url: must not have a #fragment"),
])
def test_config_mistakes_are_one_line_naming_the_key(tmp_path, keys, env, expected):
    message = config_error(tmp_path, env, **keys)
    assert expected in message
    assert HMAC_SECRET not in message and TOKEN not in message


def test_a_bad_certificate_file_is_refused_at_start_up(tmp_path):
    (tmp_path / "ca.pem").write_text("not a certificate")
    assert "sinks[0].tls_ca_file: the TLS files cannot be used" in config_error(
        tmp_path, url="https://h/x", tls_ca_file="ca.pem")


# ---------------------------------------------------------------- no secret anywhere

def test_no_secret_in_describe_reasons_parked_errors_or_repr(tmp_path, make_sink):
    (tmp_path / "token").write_text(TOKEN)
    secrets = dict(bearer_token_file="token", secret_env="S", env={"S": HMAC_SECRET})
    texts = []
    with WebhookReceiver() as rx:
        rx.script(Reply.refuse(422, b'{"error":"who are you"}'), Reply.refuse(401, b'{"error":"who are you"}'),
                  Reply.ok(500), Reply.retry_after(429, 1),
                  Reply.hang(5), Reply.dropped())
        sink = make_sink(rx.url, timeout_s=0.3, **secrets)
        batch_sink = make_sink(rx.url, mode="batch", **secrets)
        texts += [sink.describe(), batch_sink.describe(), repr(sink.settings), str(sink.settings),
                  repr(sink_settings(tmp_path, rx.url, secrets["env"], bearer_token_file="token", secret_env="S"))]
        for _ in range(6):
            outcome = sink.send(events(1))
            texts += [p.reason for p in outcome.parked] + [repr(outcome)]
            if outcome.retry is not None:
                texts.append(outcome.retry.reason)
                sink.close()
                sink.connect(5)
        assert len(texts) >= 9
        requests = rx.wait_for(5)
        assert requests[0].headers["authorization"] == f"Bearer {TOKEN}", "the token did go where it belongs"
    for url in (f"http://127.0.0.1:{free_port()}/x", "http://no-such-host.invalid/x"):
        with pytest.raises(SinkUnavailable) as info:
            make_sink(url, **secrets)
        texts.append(str(info.value))
    cert, key = self_signed_cert(tmp_path / "tls")
    with WebhookReceiver(tls=(cert, key)) as tls_rx:
        with pytest.raises(SinkUnavailable) as info:
            make_sink(tls_rx.url, **secrets)
        texts.append(str(info.value))
    for text in texts:
        assert TOKEN not in text and HMAC_SECRET not in text, text
        assert "\n" not in text


def test_the_secret_values_are_known_to_the_runner_for_masking(tmp_path, make_sink):
    (tmp_path / "token").write_text(TOKEN)
    sink = make_sink("http://127.0.0.1:9/x", connect=False, bearer_token_file="token", secret_env="S",
                     env={"S": HMAC_SECRET})
    assert set(sink.context.secrets) == {TOKEN, HMAC_SECRET}


def test_bodies_are_the_project_mapping(rx, make_sink):
    """The msgpack body is cloudevents.structured_msgpack: the JSON format's object as a map, data the envelope."""
    make_sink(rx.url, format="msgpack").send(events(5))
    ce = msgpack.unpackb(rx.wait_for(1)[0].body, raw=False)
    assert set(ce) == {"specversion", "id", "source", "type", "time", "datacontenttype", "seq", "data"}
    assert (ce["seq"], ce["datacontenttype"], ce["data"]["seq"]) == (5, "application/msgpack", 5)

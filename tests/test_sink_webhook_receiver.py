"""The webhook receiver used by the webhook and reliability tests answers by script and records what arrived."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest

from webhook_receiver import Reply, WebhookReceiver, envelopes, self_signed_cert


@pytest.fixture
def rx():
    with WebhookReceiver() as receiver:
        yield receiver


def post(conn: http.client.HTTPConnection, body: bytes = b"{}", path: str = "/hook",
         content_type: str = "application/json") -> http.client.HTTPResponse:
    conn.request("POST", path, body, {"Content-Type": content_type})
    response = conn.getresponse()
    response.read()
    return response


def test_answers_follow_the_script_then_the_default_on_one_kept_alive_connection(rx):
    rx.script(Reply.ok(201), Reply.refuse(422, b'{"error":"bad"}'), Reply.retry_after(429, 2),
              Reply.retry_after(503, 7.5))
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        statuses = [post(conn) for _ in range(5)]
    finally:
        conn.close()
    assert [r.status for r in statuses] == [201, 422, 429, 503, 200]
    assert statuses[2].getheader("Retry-After") == "2"
    assert statuses[3].getheader("Retry-After") == "7.5"
    requests = rx.requests
    assert len(requests) == 5
    assert {r.connection for r in requests} == {1}, "keep-alive: one connection carried every request"
    assert [r.reply.status for r in requests] == [201, 422, 429, 503, 200]
    assert all(r.method == "POST" and r.path == "/hook" and r.body == b"{}" for r in requests)
    assert all(r.headers["content-type"] == "application/json" for r in requests)
    assert [r.t for r in requests] == sorted(r.t for r in requests)
    assert all(r.answered_t >= r.t for r in requests)


def test_retry_after_as_an_http_date(rx):
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=30)
    rx.script(Reply.retry_after(429, when))
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        response = post(conn)
    finally:
        conn.close()
    assert response.status == 429
    assert parsedate_to_datetime(response.getheader("Retry-After")) == when


def test_a_dropped_request_gets_no_answer_and_the_next_connection_works(rx):
    rx.script(Reply.dropped())
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            post(conn)
        conn.close()
        assert post(conn).status == 200  # http.client reconnects
    finally:
        conn.close()
    first, second = rx.wait_for(2)
    assert first.answered_t is None and second.answered_t is not None
    assert first.connection != second.connection


def test_a_hang_holds_the_answer_and_close_ends_it(rx):
    rx.script(Reply.hang(30))
    outcome = {}

    def client():
        conn = http.client.HTTPConnection(rx.host, rx.port, timeout=20)
        try:
            post(conn)
            outcome["answer"] = True
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = type(exc).__name__
        finally:
            conn.close()

    thread = threading.Thread(target=client)
    thread.start()
    rx.wait_for(1)
    started = time.monotonic()
    rx.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10, "close() ends a hang at once"
    assert "error" in outcome, "a hang cut by close() gets no answer"


def test_a_rule_answers_by_content_before_the_script(rx):
    rx.set_rule(lambda req: Reply.refuse(400, b"no") if b"bad" in req.body else None)
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        assert [post(conn, b).status for b in (b'{"x":"bad"}', b'{"x":"ok"}')] == [400, 200]
    finally:
        conn.close()


def test_envelopes_decodes_a_json_batch(rx):
    batch = [{"specversion": "1.0", "id": str(i), "source": "pos://s/t/d", "type": "scanner.data",
              "data": {"src": "pos://s/t/d", "seq": i, "ts": 1, "type": "scanner.data", "data": {}}}
             for i in (1, 2)]
    conn = http.client.HTTPConnection(rx.host, rx.port, timeout=5)
    try:
        post(conn, json.dumps(batch).encode(), content_type="application/cloudevents-batch+json")
    finally:
        conn.close()
    assert [e["seq"] for e in envelopes(rx.wait_for(1)[0])] == [1, 2]


def test_https_with_a_self_signed_certificate(tmp_path):
    cert, key = self_signed_cert(tmp_path)
    with WebhookReceiver(tls=(cert, key)) as rx:
        assert rx.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection(rx.host, rx.port, timeout=5, context=ctx)
        try:
            assert post(conn).status == 200
        finally:
            conn.close()
        untrusted = http.client.HTTPSConnection(rx.host, rx.port, timeout=5,
                                                context=ssl.create_default_context())
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                post(untrusted)
        finally:
            untrusted.close()
        assert len(rx.requests) == 1

"""A real `tillwire run` child delivering scans to a webhook receiver on loopback, through the runner.

What the receiver records (arrival and answer times per request) shows the runner and the webhook sink together:
Retry-After is honoured (no request before it elapses), 500s back off exponentially with full jitter up to the cap,
a 422 parks the event as a dead letter that `tillwire outbox` lists and `tillwire outbox redrive` sends again, and
every event is accepted exactly once, in order.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bridge_helpers import PREFIX, ROOT, free_port, high_water, start_bridge, stop, wait_for, wait_port, write_config
from webhook_receiver import Reply, Request, WebhookReceiver

LABEL = b"]E04006381333931\r"
TOKEN = "tok-e2e-5b8c1d9a7f3e2d40"
HMAC_SECRET = "whsec-e2e-0a1b2c3d4e5f6a7b"


def webhook_config(tmp_path: Path, scanner_port: int, url: str, **keys) -> Path:
    lines = ["[[sinks]]", 'name = "hook"', 'kind = "webhook"', f'url = "{url}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return write_config(tmp_path, [{"name": "scanner", "protocol": "scanner",
                                    "transport": f"tcp-listen://127.0.0.1:{scanner_port}"}],
                        extra_toml="\n".join(lines))


def tillwire(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def scan(port: int, count: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(LABEL * count)


def accepted(requests: list[Request]) -> list[str]:
    """The Idempotency-Keys of the requests the receiver answered with a 2xx, in arrival order."""
    return [r.headers["idempotency-key"] for r in requests
            if r.reply is not None and 200 <= r.reply.status < 300 and not r.reply.drop]


def expected_keys(tmp_path: Path) -> list[str]:
    return sorted(f"{src}:{seq}" for src, last in high_water(tmp_path / "outbox.sqlite").items()
                  for seq in range(1, last + 1))


def all_accepted(rx: WebhookReceiver, tmp_path: Path, scans: int):
    def check():
        stored = high_water(tmp_path / "outbox.sqlite") if (tmp_path / "outbox.sqlite").exists() else {}
        if stored.get(PREFIX + "scanner", 0) < scans:
            return False
        return set(accepted(rx.requests)) >= set(expected_keys(tmp_path))
    return check


def assert_each_source_in_seq_order_once(keys: list[str]) -> None:
    assert all(n == 1 for n in Counter(keys).values()), Counter(keys).most_common(3)
    by_source: dict[str, list[int]] = {}
    for key in keys:
        src, _, seq = key.rpartition(":")
        by_source.setdefault(src, []).append(int(seq))
    for src, seqs in by_source.items():
        assert seqs == list(range(1, len(seqs) + 1)), (src, seqs)


def test_a_429_storm_is_waited_out_exactly_and_every_event_arrives_once(tmp_path):
    with WebhookReceiver() as rx:
        rx.script(*[Reply.retry_after(429, 1)] * 3)
        port = free_port()
        proc = start_bridge(webhook_config(tmp_path, port, rx.url))
        try:
            wait_port(port, proc)
            scan(port, 10)
            wait_for(all_accepted(rx, tmp_path, 10), timeout=20, what="every event accepted by the receiver")
        finally:
            rc, out, err = stop(proc)
        assert rc == 0, err
        requests = rx.requests
    refusals = [i for i, r in enumerate(requests) if r.reply.status == 429]
    assert len(refusals) == 3
    for i in refusals:
        waited = requests[i + 1].t - requests[i].answered_t
        assert waited >= 1.0, f"request {i + 1} came {waited:.3f} s after a 429 with Retry-After: 1"
    assert len({requests[i].headers["idempotency-key"] for i in refusals}) == 1, "the same event, retried"
    keys = accepted(requests)
    assert sorted(keys) == expected_keys(tmp_path)          # lost: 0
    assert_each_source_in_seq_order_once(keys)              # duplicated: 0, out of order: 0
    assert "sink hook" in out and "retries" in out           # the run summary


def test_500s_back_off_exponentially_with_full_jitter_up_to_the_cap(tmp_path):
    base, cap, failures = 0.1, 0.8, 10
    with WebhookReceiver() as rx:
        rx.script(*[Reply.ok(500)] * failures)
        port = free_port()
        proc = start_bridge(webhook_config(tmp_path, port, rx.url, backoff_base_s=base, backoff_cap_s=cap))
        try:
            wait_port(port, proc)
            scan(port, 3)
            wait_for(all_accepted(rx, tmp_path, 3), timeout=30, what="every event accepted after the 500s")
        finally:
            rc, out, err = stop(proc)
        assert rc == 0, err
        requests = rx.requests
    gaps = [requests[n + 1].t - requests[n].answered_t for n in range(failures)]
    ceilings = [min(cap, base * 2 ** n) for n in range(failures)]
    slack = 0.15  # the runner's own turn (a loaded 2-core machine), never a wait
    for n, (gap, ceiling) in enumerate(zip(gaps, ceilings)):
        assert gap <= ceiling + slack, f"retry {n}: waited {gap:.3f} s, the backoff's ceiling is {ceiling} s"
    capped = gaps[4:]                      # ceilings 0.8 from the 4th retry on
    assert max(capped) - min(capped) > 0.05, f"full jitter spreads the waits: {capped}"
    assert sum(capped) < len(capped) * cap, "full jitter waits U(0, cap), not the cap every time"
    assert sorted(accepted(requests)) == expected_keys(tmp_path)
    assert "HTTP 500 Internal Server Error" in err  # logged once when the failure started


def test_a_refused_event_is_parked_listed_and_redriven(tmp_path):
    (tmp_path / "token").write_text(TOKEN)
    env = {"HOOK_SECRET": HMAC_SECRET}
    refused_key = f"{PREFIX}scanner:3"
    refusing = {"on": True}

    def refuse_one(request: Request):
        if refusing["on"] and request.headers.get("idempotency-key") == refused_key:
            return Reply.refuse(422, b'{"error":"unknown article 4006381333931"}')
        return None

    with WebhookReceiver() as rx:
        rx.set_rule(refuse_one)
        port = free_port()
        cfg = webhook_config(tmp_path, port, rx.url, bearer_token_file="token", secret_env="HOOK_SECRET")
        proc = start_bridge(cfg, env=env)
        try:
            wait_port(port, proc)
            scan(port, 5)
            stored = wait_for(lambda: high_water(tmp_path / "outbox.sqlite").get(PREFIX + "scanner", 0) >= 5,
                              what="5 scans stored") and expected_keys(tmp_path)
            wait_for(lambda: set(accepted(rx.requests)) >= set(stored) - {refused_key}, timeout=20,
                     what="every other event accepted")

            def listed():
                r = tillwire("outbox", "--config", str(cfg), "dead-letters", "--sink", "hook", env=env)
                return r if refused_key in r.stdout else None

            listing = wait_for(listed, what="the dead letter listed")
            assert "HTTP 422 Unprocessable Entity" in listing.stdout
            assert '{"error":"unknown article 4006381333931"}' in listing.stdout
            status = json.loads(tillwire("outbox", "--config", str(cfg), "--json", env=env).stdout)
            (hook,) = [s for s in status["sinks"] if s["sink"] == "hook"]
            assert hook["dead_letters"] == 1 and hook["depth"] == 0, hook

            refusing["on"] = False  # the back office was fixed
            redrive = tillwire("outbox", "--config", str(cfg), "redrive", "--sink", "hook", "--all", env=env)
            assert redrive.returncode == 0, redrive.stderr
            wait_for(lambda: refused_key in accepted(rx.requests), timeout=15, what="the re-driven event accepted")
            wait_for(lambda: "no dead letters" in tillwire("outbox", "--config", str(cfg), "dead-letters",
                                                           env=env).stdout, what="the dead letter gone")
            outputs = [listing.stdout, listing.stderr, json.dumps(status), redrive.stdout]
        finally:
            rc, out, err = stop(proc)
        assert rc == 0, err
        requests = rx.requests
    attempts = [r for r in requests if r.headers["idempotency-key"] == refused_key]
    assert [r.reply.status for r in attempts] == [422, 200]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in requests)
    assert f"sink hook: {refused_key} (" in err and "parked as a dead letter: HTTP 422 Unprocessable Entity" in err
    for text in [out, err, *outputs]:
        assert TOKEN not in text and HMAC_SECRET not in text


def test_a_webhook_mistake_stops_tillwire_run_with_one_line(tmp_path):
    cfg = webhook_config(tmp_path, free_port(), "http://127.0.0.1:9/hook", secret_env="TILLWIRE_TEST_UNSET_SECRET")
    env = {k: v for k, v in os.environ.items() if k != "TILLWIRE_TEST_UNSET_SECRET"}
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "run", "--config", str(cfg)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "sinks[0].secret_env: environment variable TILLWIRE_TEST_UNSET_SECRET is not set" in r.stderr


def test_a_receiver_down_at_start_up_only_delays_delivery(tmp_path):
    port, hook_port = free_port(), free_port()
    proc = start_bridge(webhook_config(tmp_path, port, f"http://127.0.0.1:{hook_port}/hook",
                                       backoff_base_s=0.1, backoff_cap_s=0.3))
    try:
        wait_port(port, proc)
        scan(port, 4)
        wait_for(lambda: high_water(tmp_path / "outbox.sqlite").get(PREFIX + "scanner", 0) >= 4,
                 what="the scans captured while the receiver is down")
        with WebhookReceiver(port=hook_port) as rx:
            wait_for(all_accepted(rx, tmp_path, 4), timeout=20, what="every event accepted once it is up")
            keys, stored = accepted(rx.requests), expected_keys(tmp_path)
    finally:
        rc, out, err = stop(proc)
    assert rc == 0, err
    assert_each_source_in_seq_order_once(keys)
    assert sorted(keys) == stored
    assert f"cannot connect to 127.0.0.1:{hook_port}: Connection refused" in err

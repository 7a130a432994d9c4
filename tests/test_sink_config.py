"""``[[sinks]]`` and ``[delivery]`` in the config file: every mistake is one line naming the key; secrets come only
from files or the environment and never show up in a message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.config import ConfigError, load
from bridge.sinks.settings import Secret

HEAD = """
[bridge]
source_prefix = "pos://store-1/till-3/"
outbox = "o.sqlite"

[[devices]]
name = "scanner"
protocol = "scanner"
transport = "tcp-listen://127.0.0.1:0"
"""


def cfg(tmp_path, text: str):
    p = tmp_path / "c.toml"
    p.write_text(HEAD + text)
    return p


def error(tmp_path, text: str, monkeypatch=None) -> str:
    with pytest.raises(ConfigError) as exc:
        load(cfg(tmp_path, text))
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_file_sink_defaults(tmp_path):
    c = load(cfg(tmp_path, '[[sinks]]\nname = "archive"\nkind = "file"\ndir = "ev"\n'))
    (s,) = c.sinks
    assert (s.name, s.kind, s.classes, s.types) == ("archive", "file", ("realtime", "batch"), None)
    assert s.options.dir == tmp_path / "ev" and s.options.format == "jsonl"
    assert c.sink_drain_s == 5.0


@pytest.mark.parametrize("text, expected", [
    ('[[sinks]]\nname = "a"\nkind = "kafka"\n', "sinks[0].kind: unknown sink kind 'kafka'; known kinds: file, mqtt, nats, webhook"),
    ('[[sinks]]\nkind = "file"\ndir = "x"\n', "sinks[0].name: is required"),
    ('[[sinks]]\nname = "A B"\nkind = "file"\ndir = "x"\n', "sinks[0].name: must be lowercase"),
    ('[[sinks]]\nname = "a"\nkind = "file"\ndir = "x"\nclasses = ["urgent"]\n', "sinks[0].classes: must be a non-empty list"),
    ('[[sinks]]\nname = "a"\nkind = "file"\ndir = "x"\ntypes = ["pay ment"]\n', "sinks[0].types: must be a non-empty list"),
    ('[[sinks]]\nname = "a"\nkind = "file"\ndir = "x"\nmax_batch = 0\n', "sinks[0].max_batch: must be between 1 and 10000"),
    ('[[sinks]]\nname = "a"\nkind = "file"\ndir = "x"\nfromat = "jsonl"\n', "sinks[0]: unknown key 'fromat'"),
    ('[[sinks]]\nname = "a"\nkind = "file"\ndir = "x"\n[[sinks]]\nname = "a"\nkind = "file"\ndir = "y"\n',
     "sinks[1].name: sink name 'a' is used twice"),
    ('[delivery]\nrealtime = ["printer.*"]\nbatch = ["printer.*"]\n', "delivery.batch: 'printer.*' is in both"),
    ('[delivery]\nrealtime = ["printer.**"]\n', "delivery.realtime: 'printer.**' is not an event type"),
    ('[delivery]\nurgent = ["x"]\n', "delivery: unknown key 'urgent'"),
])
def test_mistakes_are_one_line(tmp_path, text, expected):
    assert expected in error(tmp_path, text)


def test_delivery_overrides(tmp_path):
    c = load(cfg(tmp_path, '[delivery]\nrealtime = ["printer.*"]\nbatch = ["payment.result"]\n'))
    assert c.delivery("printer.line") == "realtime" and c.delivery("payment.result") == "batch"


class _T:
    """A table for the secret readers, as bridge.config gives them."""

    def __init__(self, data):
        from bridge.config import _Table
        from pathlib import Path

        self.t = _Table(Path("c.toml"), "sinks[0]", data)


def test_secret_from_file_and_env(tmp_path):
    from bridge.sinks.settings import read_secret

    (tmp_path / "pw").write_text("s3cret-value\n")
    s = read_secret(_T({"password_file": "pw"}).t, "password", tmp_path, {})
    assert s.reveal() == "s3cret-value" and "s3cret" not in repr(s) and "s3cret" not in str(s)
    assert str(tmp_path / "pw") in repr(s)
    s = read_secret(_T({"password_env": "TW_PW"}).t, "password", tmp_path, {"TW_PW": "from-env"})
    assert s.reveal() == "from-env" and s.origin == "environment variable TW_PW"
    assert isinstance(s, Secret)


@pytest.mark.parametrize("data, env, expected", [
    ({"password": "plain-text-pw"}, {}, "a secret never goes into the config file"),
    ({"password_file": "missing"}, {}, "password_file: no such file"),
    ({"password_env": "NOPE"}, {}, "password_env: environment variable NOPE is not set"),
    ({"password_file": "pw", "password_env": "X"}, {"X": "y"}, "give password_file or password_env, not both"),
    ({"password_file": "empty"}, {}, "is empty"),
])
def test_secret_mistakes_never_show_the_value(tmp_path, data, env, expected):
    from bridge.sinks.settings import read_secret

    (tmp_path / "pw").write_text("s3cret-value")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError) as exc:
        read_secret(_T(data).t, "password", tmp_path, env)
    assert expected in str(exc.value)
    assert "plain-text-pw" not in str(exc.value) and "s3cret-value" not in str(exc.value)


def test_url_credentials_are_refused(tmp_path):
    from bridge.sinks.settings import url_without_credentials

    with pytest.raises(ConfigError) as exc:
        url_without_credentials(_T({"url": "nats://bob:pa55word@10.0.0.2:4222"}).t, "url", ("nats",))
    assert "must not carry user:password@" in str(exc.value) and "pa55word" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        url_without_credentials(_T({"url": "http://bob:pa55word@x"}).t, "url", ("nats",))
    assert "pa55word" not in str(exc.value)


def test_tls_files_are_checked_at_start(tmp_path):
    from bridge.sinks.settings import tls_files

    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError) as exc:
        tls_files(_T({"tls_ca_file": "ca.pem"}).t, tmp_path, {})
    assert "sinks[0].tls_ca_file: the TLS files cannot be used" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        tls_files(_T({"tls_ca_file": "nope.pem"}).t, tmp_path, {})
    assert "no such file" in str(exc.value)
    files = tls_files(_T({}).t, tmp_path, {})
    assert files.verify is True


def test_tillwire_run_prints_one_line_and_exits_2(tmp_path):
    p = cfg(tmp_path, '[[sinks]]\nname = "bus"\nkind = "file"\ndir = "x"\npassword = "oops-secret"\n')
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "run", "--config", str(p)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "oops-secret" not in r.stderr


def test_names_and_kinds_without_secrets_for_tillwire_outbox(tmp_path, monkeypatch):
    monkeypatch.delenv("TW_UNSET_PW", raising=False)
    text = ('[[sinks]]\nname = "bus"\nkind = "mqtt"\nurl = "mqtt://10.0.0.2:1883"\nusername = "till"\n'
            'password_env = "TW_UNSET_PW"\n')
    assert "environment variable TW_UNSET_PW is not set" in error(tmp_path, text)
    c = load(cfg(tmp_path, text), check_devices=False, check_sinks=False)
    assert [(s.name, s.kind, s.options) for s in c.sinks] == [("bus", "mqtt", None)]
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "outbox", "--config", str(cfg(tmp_path, text))],
                       capture_output=True, text=True, timeout=60)
    assert "no outbox at" in r.stderr  # it got past the config without the password


def test_a_secret_must_be_one_line(tmp_path):
    from bridge.sinks.settings import read_secret

    (tmp_path / "tok").write_text("part-one-secret\npart-two-secret\n")
    with pytest.raises(ConfigError) as exc:
        read_secret(_T({"token_file": "tok"}).t, "token", tmp_path, {})
    assert "must be one line" in str(exc.value) and "part-" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        read_secret(_T({"token_env": "T"}).t, "token", tmp_path, {"T": "abc\x07def"})
    assert "control character" in str(exc.value) and "abc" not in str(exc.value)


def test_a_site_that_cannot_be_a_nats_subject_token_stops_the_start_in_one_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(HEAD.replace("pos://store-1/till-3/", "pos://store.1/till-3/") +
                 '[[sinks]]\nname = "bus"\nkind = "nats"\nurl = "nats://127.0.0.1:1"\n')
    r = subprocess.run([sys.executable, "-m", "bridge.cli", "run", "--config", str(p)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "sinks: bus:" in r.stderr and "store.1" in r.stderr

"""TLS to the server: verified against tls_ca_file, refused (one line) when the server's certificate does not verify,
and tls_verify = false as the explicit way out. Certificates are made per test with the openssl command."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bridge.sinks.base import SinkUnavailable
from nats_fixture import NatsServer
from test_sink_nats import events, load_sink


def make_certificates(d) -> None:
    """A CA and a server certificate for 127.0.0.1 signed by it (EC P-256, valid one day)."""
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl command (apt-get install openssl)"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=30)
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=tillwire test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "1", "-extfile", "san.ext")


@pytest.fixture
def tls_server(tmp_path):
    make_certificates(tmp_path)
    tls = f'tls {{ cert_file: "{tmp_path / "server.pem"}", key_file: "{tmp_path / "server.key"}" }}'
    with NatsServer(extra_config=tls) as server:
        yield server


def test_tls_verified_against_the_configured_ca(tmp_path, tls_server):
    sink = load_sink(tmp_path, f'url = "tls://127.0.0.1:{tls_server.port}"\ntls_ca_file = "ca.pem"')
    try:
        sink.connect(5)
        assert sink.send(events(3)).done == 3
    finally:
        sink.close()


def test_a_certificate_that_does_not_verify_is_refused_in_one_line(tmp_path, tls_server):
    sink = load_sink(tmp_path, f'url = "tls://127.0.0.1:{tls_server.port}"')   # the system CAs only
    with pytest.raises(SinkUnavailable) as exc:
        sink.connect(5)
    sink.close()
    message = str(exc.value)
    assert message.startswith(f"cannot connect to tls://127.0.0.1:{tls_server.port}: ")
    assert message.endswith("the server's TLS certificate does not verify (unable to get local issuer certificate); "
                            "set tls_ca_file to its CA")


def test_tls_verify_false_is_the_explicit_way_out(tmp_path, tls_server):
    sink = load_sink(tmp_path, f'url = "tls://127.0.0.1:{tls_server.port}"\ntls_verify = false')
    try:
        sink.connect(5)
        assert sink.send(events(1)).done == 1
    finally:
        sink.close()

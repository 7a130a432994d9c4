"""`tillwire decode`: the command a developer meets first. User mistakes are one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

RECEIPT = bytes.fromhex(
    "1b40"                  # ESC @
    "1b6101" "1b4501"       # centre, bold
    "53484f50" "0a"         # "SHOP" LF
    "1b4500" "1b6100"       # bold off, left
    "4d696c6b2020312e3230" "0a"  # "Milk  1.20" LF
    "1d5601"                # partial cut
)


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], input=stdin, capture_output=True,
                          timeout=120)


@pytest.fixture
def receipt_file(tmp_path):
    path = tmp_path / "shop.bin"
    path.write_bytes(RECEIPT)
    return path


def test_jsonl_is_enveloped_with_seq_from_1_and_ts_0(receipt_file):
    res = run_cli("decode", "-p", "escpos", str(receipt_file))
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.decode().splitlines()]
    assert [e["type"] for e in events] == ["printer.init", "printer.line", "printer.line", "printer.cut"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert {e["ts"] for e in events} == {0}
    assert {e["src"] for e in events} == {"file://shop.bin"}
    assert events[1]["data"] == {"text": "SHOP", "align": "center", "spans": [[0, 4, {"bold": True}]]}
    assert events[3]["data"] == {"partial": True}


def test_msgpack_format_and_src_option(receipt_file):
    res = run_cli("decode", "-p", "escpos", "--format", "msgpack", "--src", "pos://s1/t1/printer", str(receipt_file))
    assert res.returncode == 0, res.stderr
    events = list(msgpack.Unpacker(__import__("io").BytesIO(res.stdout), raw=False))
    assert len(events) == 4
    assert events[0] == {"src": "pos://s1/t1/printer", "seq": 1, "ts": 0, "type": "printer.init", "data": {}}


def test_text_format_prints_the_receipt_and_a_summary(receipt_file):
    res = run_cli("decode", "-p", "escpos", "--format", "text", "--width", "20", str(receipt_file))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert lines[0] == "SHOP".center(20).rstrip()
    assert lines[1] == "Milk  1.20"
    assert lines[2] == ("- " * 10).rstrip()
    assert lines[-1].startswith("shop.bin: 4 events")


def test_stdin_is_read_with_dash():
    res = run_cli("decode", "-p", "escpos", "-", stdin=b"hello\n")
    assert res.returncode == 0, res.stderr
    event = json.loads(res.stdout)
    assert event["src"] == "file://stdin" and event["data"]["text"] == "hello"


def test_bytes_show_as_hex_in_jsonl(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\x1b\xffok\n")
    res = run_cli("decode", "-p", "escpos", str(path))
    first = json.loads(res.stdout.decode().splitlines()[0])
    assert first["type"] == "protocol.error"
    assert first["data"]["raw"] == "1bff" and first["data"]["offset"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "-p", "nosuch", "FILE"), "unknown protocol 'nosuch'"),
        (("decode", "-p", "escpos", "/nonexistent/capture.bin"), "cannot read /nonexistent/capture.bin: no such file"),
        (("decode", "-p", "escpos", "--profile", "tm-zz", "FILE"), "unknown printer profile 'tm-zz'"),
        (("decode", "-p", "escpos", "--format", "xml", "FILE"), "invalid choice: 'xml'"),
        (("decode", "-p", "escpos", "--src", "x://a", "FILE", "FILE"), "--src names one source"),
        (("decode", "-p", "escpos", "DIR"), "it is a directory"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(receipt_file, tmp_path, args, message):
    args = tuple(str(receipt_file) if a == "FILE" else str(tmp_path) if a == "DIR" else a for a in args)
    res = run_cli(*args)
    assert res.returncode == 2
    err = res.stderr.decode()
    assert err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert res.stdout == b""


def test_every_subcommand_help_has_an_example():
    res = run_cli("decode", "--help")
    assert res.returncode == 0
    out = res.stdout.decode()
    assert "examples:" in out and "tillwire decode -p zvt-serial" in out


def test_replies_are_paired_with_the_requests_of_the_other_direction(tmp_path):
    requests = tmp_path / "till.bin"
    replies = tmp_path / "printer.bin"
    requests.write_bytes(b"\x10\x04\x01" + b"\x10\x04\x04")   # DLE EOT 1 (printer), DLE EOT 4 (paper)
    replies.write_bytes(b"\x16" + b"\x7e")                    # drawer pin high + online; paper out
    res = run_cli("decode", "-p", "escpos", "--direction", "from_device", "--requests", str(requests), str(replies))
    assert res.returncode == 0, res.stderr
    data = [json.loads(line)["data"] for line in res.stdout.decode().splitlines()]
    assert data == [
        {"kind": "printer", "online": True, "drawer_open": True, "raw": "16"},
        {"open": True},  # drawer.status (escpos.md section 9)
        {"kind": "paper", "paper": "out", "raw": "7e"},
    ]
    unpaired = run_cli("decode", "-p", "escpos", "--direction", "from_device", str(replies))
    assert [json.loads(line)["data"]["kind"] for line in unpaired.stdout.decode().splitlines()] == ["unknown"] * 2


def test_requests_only_make_sense_for_replies(receipt_file):
    res = run_cli("decode", "-p", "escpos", "--requests", str(receipt_file), str(receipt_file))
    assert res.returncode == 2 and "--direction from_device" in res.stderr.decode()


@pytest.mark.parametrize(("option", "message"), [
    ("strict", "-o takes key=value, not 'strict'"),
    ("=1", "-o takes key=value, not '=1'"),
    ("colour=blue", "unknown zvt option(s) colour"),
])
def test_decoder_options_are_checked_in_one_line(receipt_file, option, message):
    res = run_cli("decode", "-p", "zvt-tcp", "-o", option, str(receipt_file))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


PAYMENT = Path(__file__).resolve().parent.parent / "sessions" / "payment"


@pytest.mark.parametrize(("args", "expected"), [
    (("-p", "zvt-serial", "--direction", "from_device", "zvt-card-sale.serial.from_device.bin"),
     ["STATUS   0A Insert card", "RESULT   APPROVED 12.50 EUR (result 00)",
      "         card 476173******0010, VISA, TID 52500038, trace 000123, receipt 0042, auth A1B2C3, date 1123, "
      "time 143005", "  | Karte ############0010"]),
    (("-p", "zvt-tcp", "--direction", "from_device", "zvt-card-declined.tcp.from_device.bin"),
     ["RESULT   DECLINED 89.90 EUR (result 05)", "RESULT   DECLINED (result 05)"]),
    (("-p", "zvt-serial", "zvt-card-sale.serial.bin"), ["REQUEST  authorization 12.50 EUR"]),
    (("-p", "iso8583", "-o", "spec=iso87-binary", "-o", "framing=len2", "iso8583-sale.len2.from_device.bin"),
     ["RESULT   APPROVED 12.50 EUR (result 00)",
      "         card 476173******0010, visa, chip, TID TERM0001, trace 000123, RRN 332712345678, auth AB1234, "
      "date 1123, time 143005"]),
    (("-p", "ecr", "-o", "preset=transbank", "ecr-transbank-sale.bin"),
     ["REQUEST  authorization 15990 CLP ticket=A00042"]),
])
def test_payment_samples_read_as_a_transcript(args, expected):
    *opts, name = args
    res = run_cli("decode", "--format", "text", *opts, str(PAYMENT / name))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    for line in expected:
        assert line in lines
    assert lines[-1].endswith("0 protocol.error")
    assert "4761739001010010" not in res.stdout.decode()


def test_a_bad_decoder_option_value_is_one_line(tmp_path):
    capture = tmp_path / "x.bin"
    capture.write_bytes(b"\x00\x00")
    for option, message in (("spec=nosuch", "nosuch"), ("framing=len3", "len3"), ("preset=foo", "foo")):
        proto = "ecr" if option.startswith("preset") else "iso8583"
        res = run_cli("decode", "-p", proto, "-o", option, str(capture))
        err = res.stderr.decode()
        assert res.returncode == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err

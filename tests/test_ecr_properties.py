"""ECR link decoder properties: card data never leaks (payment.md section 2), arbitrary bytes never crash, error
raw never holds payload bytes, and the settings are validated with clear errors in Python and again in C."""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import Decoder
from protocols.decoder import unpack_events
from protocols.ecr import tables as T

PRESETS = sorted(T.PRESETS)


def decode(options: dict, data: bytes, cut: int = 0) -> bytes:
    dec = Decoder("ecr", **options)
    return dec.feed(data[:cut]) + dec.feed(data[cut:]) + dec.close()


# PANs of 13..19 digits (the scrubber keys on length, not on the Luhn digit), varied enough that a 7-digit run of
# one cannot be a run of the message's own digits
pans = st.integers(13, 19).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)).filter(
    lambda p: all(len(set(p[k:k + 7])) >= 3 for k in range(len(p) - 6)))
field_text = st.text("ABCDEFGHIJ XYZ./:-0123456789", max_size=12)


def assert_no_pan_run(pan: str, out: bytes) -> None:
    for k in range(len(pan) - 6):
        run = pan[k:k + 7].encode()
        assert run not in out, f"7 digits of the PAN ({run!r}) reached the output"


@given(pan=pans, before=field_text, after=field_text, preset=st.sampled_from(["transbank", "pax"]),
       where=st.integers(0, 25), code=st.sampled_from(["0200", "0210", "1200", "1210", "T00", "T01", "X"]),
       sep=st.sampled_from(["", " ", "-"]), cut=st.integers(0, 200), truncate=st.booleans())
def test_pans_in_fields_never_leave_whole(pan, before, after, preset, where, code, sep, cut, truncate):
    cfg = T.resolve({"preset": preset})
    fs = bytes([cfg.fs])
    shown = pan if not sep else sep.join(pan[i:i + 4] for i in range(0, len(pan), 4))
    fields = [code.encode()] + [f"{i}".encode() for i in range(where)] + [(before + shown + after).encode()]
    if cfg.us is not None and where % 2:
        fields[-1] = fields[-1] + bytes([cfg.us]) + shown.encode()
    wire = T.frame(cfg, fs.join(fields) + fs + b"X")
    if truncate:
        wire = wire[:-2]
    out = decode({"preset": preset}, wire, cut % (len(wire) + 1))
    assert_no_pan_run(pan, out)


@given(pan=pans, pad=st.text("0123456789 ", max_size=20), good=st.booleans())
def test_pans_in_concert_reports_never_leave_whole(pan, pad, good):
    cfg = T.resolve({"preset": "concert"})
    report = (pan + " " + pad).encode()[:55].ljust(55)
    wire = T.frame(cfg, b"010" + b"00001000" + b"1" + report + b"978" + b"TXID-ABCDE", good)
    assert_no_pan_run(pan[:55], decode({"preset": "concert"}, wire))


@given(pan=pans, options=st.sampled_from([{}, {"fs": "0x7c"}, {"fs": 0x1C, "us": 0x1F}, {"checksum": "none"}]))
def test_pans_in_custom_payloads_never_leave_whole(pan, options):
    cfg = T.resolve(options)
    wire = T.frame(cfg, b"AMT 100|" + pan.encode() + b"|END")
    assert_no_pan_run(pan, decode(options, wire))


@given(options=st.sampled_from([{"preset": p} for p in PRESETS] + [{}, {"checksum": "crc16-xmodem", "fs": 0x7C}]),
       data=st.binary(max_size=600), cut=st.integers(0, 600))
def test_arbitrary_bytes_never_crash_and_errors_quote_no_payload(options, data, cut):
    cfg = T.resolve(options)
    events = unpack_events(decode(options, data, cut % (len(data) + 1)))
    for e in events:
        assert set(e) == {"type", "data"}
        if e["type"] == "protocol.error":
            assert e["data"]["raw"] in (b"", bytes([cfg.stx])), e
            assert e["data"]["code"] in T.ERRORS


def test_semantic_keys_follow_the_layout_order():
    cfg = T.resolve({"preset": "transbank"})
    rsp = b"0210|00|1|T1|R1|A1|99|||4242|7|DB|0|0|MC|010126|101010|0|0|"
    events = unpack_events(decode({"preset": "transbank"}, T.frame(cfg, rsp)))
    assert list(events[1]["data"]) == ["approved", "result_code", "amount_minor", "currency", "pan", "card", "terminal_id",
                                        "trace", "receipt_no", "auth_code", "date", "time", "card_type"]


names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ /.", min_size=6, max_size=26).filter(lambda n: len(n.strip()) >= 6)


@given(name=names, expiry=st.from_regex(r"\A(0[1-9]|1[0-2])[2-4][0-9]\Z"), pan=pans, cut=st.integers(0, 300))
def test_pax_expiry_and_cardholder_never_leave(name, expiry, pan, cut):
    """payment.md section 2: expiry dates and cardholder names are withheld outright, not only from the result."""
    cfg = T.resolve({"preset": "pax"})
    account = b"\x1f".join([pan.encode(), b"0", expiry.encode(), b"", b"", b"", b"VISA", name.encode(), b"", b"", b"0"])
    payload = b"\x1c".join([b"0", b"T01", b"1.35", b"000000", b"OK", b"00\x1fOK\x1fA1", b"01", b"100", account, b"7"])
    out = decode({"preset": "pax"}, T.frame(cfg, payload), cut % (len(payload) + 3))
    assert name.strip().encode() not in out
    assert b"\x1f" + expiry.encode() + b"\x1f" not in out and b"\xa4" + expiry.encode() not in out
    assert_no_pan_run(pan, out)
    events = unpack_events(out)
    assert events[0]["data"]["withheld"] == ["expiry", "cardholder"]
    assert "expiry" not in events[1]["data"] and "cardholder" not in events[1]["data"]


# ------------------------------------------------------------------------------------------------ settings

@pytest.mark.parametrize("options, message", [
    ({"preset": "visa"}, r"preset 'visa' is unknown; the presets are: concert, nexi, pax, transbank"),
    ({"colour": "red"}, r"unknown ecr option\(s\) colour; the options are: preset, stx"),
    ({"stx": "0x1G"}, r"stx='0x1G' is not a number; write it in decimal \(2\) or 0x-hex \(0x02\)"),
    ({"etx": 300}, r"etx=300 is not a byte: it must be 0..255"),
    ({"stx": 3}, r"stx and etx must differ"),
    ({"ack": "0x02"}, r"stx and ack are both 0x02"),
    ({"checksum": "md5"}, r"checksum='md5' is unknown; use one of: none, xor, sum, crc16-kermit, crc16-xmodem"),
    ({"seed": "256"}, r"seed='256' is out of range for checksum xor: it must be 0..255"),
    ({"checksum": "crc16-kermit", "seed": 70000}, r"must be 0..65535"),
    ({"checksum": "none", "seed": 1}, r"checksum none takes no seed"),
    ({"us": 0x1F}, r"us \(sub-field separator\) needs fs"),
    ({"fs": "0x30"}, r"fs=0x30 may not be a digit, a space or a hyphen"),
    ({"fs": 0x7C, "us": 0x7C}, r"fs and us must differ"),
    ({"fs": 2}, r"fs=0x02 is also the stx or etx byte"),
    ({"max_frame": 0}, r"max_frame=0 must be 1..65536"),
    ({"max_frame": "70000"}, r"max_frame='70000' must be 1..65536"),
    ({"include_stx": "maybe"}, r"include_stx='maybe' is not a boolean"),
    ({"byte_order": "middle"}, r"byte_order='middle' is unknown; use big or little"),
    ({"seed": True}, r"seed must be an integer, not True"),
])
def test_bad_settings_are_value_errors_naming_the_problem(options, message, backend):
    with pytest.raises(ValueError, match=message):
        Decoder("ecr", backend=backend, **options)


@pytest.mark.parametrize("options, expect", [
    ({"preset": "nexi", "seed": "0x7F"}, {"seed": 0x7F, "dialect": "nexi"}),
    ({"preset": "transbank", "fs": "none"}, {"fs": None, "match": None}),
    ({"stx": "2", "etx": "0x03", "ack": "", "eot": None}, {"ack": None, "eot": None, "dialect": "custom"}),
    ({"preset": " PAX "}, {"dialect": "pax", "fs": 0x1C, "us": 0x1F}),
    ({"include_etx": "no", "strict": 1}, {"include_etx": False, "strict": True}),
])
def test_settings_from_strings(options, expect):
    cfg = T.resolve(options)
    for key, value in expect.items():
        assert getattr(cfg, key) == value, key


def test_c_checks_the_configuration_again():
    """The Python checks come first; tw_ecr_check_config rejects the same mistakes (bad_config) if they get past."""
    native = pytest.importorskip("protocols.ecr.native")
    from protocols.native_decoder import ERROR_CODES, ffi, lib

    bad_config = ERROR_CODES["bad_config"]
    good = native.build_config(T.resolve({"preset": "transbank"}))
    assert lib.tw_ecr_check_config(good) == 0

    def mutated(**changes):
        c = ffi.new("tw_ecr_config *")
        ffi.memmove(c, good, ffi.sizeof("tw_ecr_config"))
        for k, v in changes.items():
            setattr(c, k, v)
        return c

    for changes in ({"stx": 3}, {"stx": 256}, {"checksum": 9}, {"seed": 256}, {"ack": 2}, {"fs": 0x30},
                    {"fs": -1}, {"us": 0x7C}, {"max_frame": 0}, {"max_frame": 65537}, {"dialect_len": 0},
                    {"match": 7}, {"n_messages": 65}, {"enq": 0x06}):
        c = mutated(**changes)
        assert lib.tw_ecr_check_config(c) == bad_config, changes
        assert lib.tw_ecr_new(c) == ffi.NULL, changes
    assert lib.tw_ecr_check_config(ffi.NULL) == bad_config


def test_decoder_api(backend):
    dec = Decoder("ecr", backend=backend, preset="transbank")
    assert dec.feed(b"") == b""
    out = dec.feed(bytearray(b"\x06")) + dec.feed(memoryview(b"\x15"))
    assert [e["type"] for e in unpack_events(out)] == ["link.ack", "link.nak"]
    dec.close()
    from protocols.decoder import DecoderClosed

    with pytest.raises(DecoderClosed):
        dec.feed(b"\x06")

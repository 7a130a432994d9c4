"""ISO 8583 specs as data (docs/protocols/iso8583.md section 4): the built-in specs equal pyiso8583's, bad JSON
specs give one clear ValueError naming the field and the key, C checks the compiled table again, options are
checked, and the tables C keeps for speed (cp500, card tags, entry modes, BIN ranges) agree with Python's."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iso8583 import specs as pyspecs

from protocols import Decoder
from protocols.card import mask_pan
from protocols.decoder import unpack_events
from protocols.iso8583 import spec as S
from protocols.iso8583 import tables as T

native = pytest.importorskip("protocols.iso8583.native", reason="the C core is not built (make native)")


# ------------------------------------------------------------------------------------- built-in specs


@pytest.mark.parametrize(("name", "py"), [("iso87-binary", pyspecs.default), ("iso87-ascii", pyspecs.default_ascii)])
def test_builtin_specs_match_pyiso8583(name, py):
    spec = S.load(name)
    assert spec.mti == S.MTI_ENCODINGS["ascii"]
    assert spec.bitmap_hex == (py["p"]["data_enc"] != "b")
    assert py["h"]["max_len"] == 0
    for n in range(2, 129):
        f, p = spec.fields[n], py[str(n)]
        assert f.max == p["max_len"], n
        assert f.kind == p["len_type"], n
        if f.kind:
            assert f.prefix == S.PREFIXES["ascii"] and p["len_enc"] == "ascii", n
        if n == 55:
            assert f.tlv and f.data == (S.DATAS["binary"] if p["data_enc"] == "b" else S.DATAS["hex"])
        else:
            assert f.data == (S.DATAS["binary"] if p["data_enc"] == "b" else S.DATAS["ascii"]), n


def test_builtin_names():
    assert {"iso87-ascii", "iso87-binary", "iso87-bcd"} <= set(S.builtin_names())


# ------------------------------------------------------------------------------------- validation

GOOD = {"name": "t", "mti": "ascii", "bitmap": "binary",
        "fields": {"2": {"length": "LL", "max": 19, "prefix": "ascii", "data": "ascii"}}}


def mutate(path, value):
    doc = json.loads(json.dumps(GOOD))
    target = doc
    for k in path[:-1]:
        target = target[k]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(("path", "value", "words"), [
    (["mti"], "hex", ["'mti'", "ascii, ebcdic, bcd"]),
    (["bitmap"], KeyError, ["'bitmap'", "missing"]),
    (["extra"], 1, ["'extra'", "not a spec key"]),
    (["name"], "", ["'name'"]),
    (["fields"], [], ["'fields'"]),
    (["fields", "1"], {"length": "fixed", "max": 8, "data": "binary"}, ["'fields'", "'1'"]),
    (["fields", "129"], {"length": "fixed", "max": 8, "data": "binary"}, ["'129'"]),
    (["fields", "2", "length"], "LLLLL", ["field '2'", "'length'"]),
    (["fields", "2", "max"], 100, ["field '2'", "'max'", "at most 99"]),
    (["fields", "2", "max"], 0, ["field '2'", "'max'"]),
    (["fields", "2", "max"], True, ["field '2'", "'max'"]),
    (["fields", "2", "prefix"], KeyError, ["field '2'", "'prefix'", "missing"]),
    (["fields", "2", "prefix"], "utf8", ["field '2'", "'prefix'"]),
    (["fields", "2", "data"], "cp037", ["field '2'", "'data'"]),
    (["fields", "2", "count"], "digits", ["field '2'", "'count'", "bcd"]),
    (["fields", "2", "pad"], "left", ["field '2'", "'pad'"]),
    (["fields", "2", "tlv"], True, ["field '2'", "'tlv'"]),
    (["fields", "2", "tlv"], "yes", ["field '2'", "'tlv'"]),
    (["fields", "2", "len_type"], 2, ["field '2'", "'len_type'", "not a field key"]),
    (["fields", "2", "desc"], 3, ["field '2'", "'desc'"]),
])
def test_bad_specs_name_the_field_and_key(path, value, words):
    with pytest.raises(ValueError) as exc:
        S.validate(mutate(path, value), "x.json")
    msg = str(exc.value)
    for w in words:
        assert w in msg, (w, msg)


def test_fixed_fields_take_no_prefix_and_binary_ll_fits_a_byte():
    with pytest.raises(ValueError, match="'prefix'"):
        S.validate(mutate(["fields", "3"], {"length": "fixed", "max": 6, "data": "ascii", "prefix": "ascii"}))
    S.validate(mutate(["fields", "3"], {"length": "LL", "max": 255, "data": "binary", "prefix": "binary"}))
    with pytest.raises(ValueError, match="at most 255"):
        S.validate(mutate(["fields", "3"], {"length": "LL", "max": 256, "data": "binary", "prefix": "binary"}))


def test_spec_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Decoder("iso8583", spec=str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        Decoder("iso8583", spec=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="built-in specs: .*iso87-ascii"):
        Decoder("iso8583", spec="iso99")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    d = Decoder("iso8583", spec=str(good), framing="none")
    d.feed(b"0200" + bytes([0x40]) + bytes(7) + b"041234")
    assert unpack_events(d.close())[0]["data"]["fields"] == {"2": "1234"}


@pytest.mark.parametrize(("protocol", "options", "words"), [
    ("iso8583", {"framing": "len3"}, "framing must be one of len2"),
    ("iso8583", {"header": 33}, "header=33 is out of range: 0..32"),
    ("iso8583", {"header": -1}, "header=-1 is out of range"),
    ("iso8583", {"header": "five"}, "header='five' is not a number"),
    ("iso8583", {"strict": "maybe"}, "strict='maybe' is not a boolean"),
    ("iso8583", {"spek": "x"}, "unknown iso8583 option"),
    ("lenframe", {"framing": "none"}, "framing must be one of"),
    ("lenframe", {"spec": "iso87-ascii"}, "unknown lenframe option"),
])
def test_bad_options(protocol, options, words):
    with pytest.raises(ValueError, match=words):
        Decoder(protocol, **options)


def test_c_checks_the_compiled_table_again():
    ffi, lib = native.ffi, native.lib
    cfg, table = native.make_config(S.load("iso87-binary"), "len2", 0, False)
    assert lib.tw_iso8583_check_config(cfg) == 0
    bad = ffi.new("tw_iso_field[129]")
    ffi.memmove(bad, table, ffi.sizeof(bad))
    cfg.fields = bad
    for field, attr, value in [(2, "kind", 5), (2, "max", 0), (2, "max", 100), (2, "prefix_width", 3),
                               (3, "flags", 1 | 8), (3, "data", 5), (1, "flags", 1), (4, "flags", 1 | 4)]:
        ffi.memmove(bad, table, ffi.sizeof(bad))
        setattr(bad[field], attr, value)
        assert lib.tw_iso8583_check_config(cfg) != 0, (field, attr, value)
        assert lib.tw_iso8583_new(cfg) == ffi.NULL
    ffi.memmove(bad, table, ffi.sizeof(bad))
    cfg.header = 33
    assert lib.tw_iso8583_check_config(cfg) != 0


# ------------------------------------------------------------------------------------- mirrored tables


def test_cp500_table_matches_the_codec():
    assert bytes(native.ffi.buffer(native.lib.tw_cp500_to_latin1, 256)) == T.CP500_TO_LATIN1
    assert bytes(range(256)).decode("cp500").encode("latin-1") == T.CP500_TO_LATIN1


def _result(backend, fields: bytes, bitmap: bytes) -> dict:
    d = Decoder("iso8583", backend=backend, spec="iso87-binary", framing="none")
    d.feed(b"0210" + bitmap + fields)
    return unpack_events(d.close())


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_entry_modes_and_brands_agree_with_the_tables(backend):
    rng = random.Random(5)
    bitmap = bytes([0x40, 0, 0x04, 0, 0, 0, 0, 0])                  # fields 2 and 22
    prefixes = ["4", "34", "37", "51", "55", "56", "2221", "2720", "2721", "3528", "3589", "6011", "644", "65",
                "62", "622126", "622925", "5018", "6304", "6759", "6763", "6764", "1", "9"]
    for prefix in prefixes:
        for length in (12, 13, 16, 19):
            pan = (prefix + "".join(rng.choice("0123456789") for _ in range(19)))[:length]
            entry = rng.choice(["051", "071", "021", "901", "011", "999", "0"])
            f22 = entry.ljust(3, " ")[:3]
            ev = _result(backend, b"%02d" % len(pan) + pan.encode() + f22.encode(), bitmap)[1]["data"]
            assert ev["pan"] == mask_pan(pan)
            assert ev.get("card") == T.card_brand(mask_pan(pan)), pan
            assert ev.get("entry") == T.ENTRY_MODES.get(f22[:2])


def test_brand_table_examples():
    assert T.card_brand(mask_pan("4761739001010010")) == "visa"
    assert T.card_brand(mask_pan("6221260000000000")) is None       # UnionPay and Discover: ambiguous
    assert T.card_brand(mask_pan("6200000000000000")) == "unionpay"
    assert T.card_brand(mask_pan("476173900101")) is None            # 12 digits keep only their last four


@given(st.binary(min_size=1, max_size=4), st.binary(max_size=24))
def test_tlv_card_tags_agree(tag, value):
    """Any tag (card tags and others) inside field 55: both backends alike, and no value of 7+ PAN digits leaks."""
    if tag[0] & 0x1F == 0x1F:
        tag = tag[:1] + bytes(b | 0x80 for b in tag[1:-1]) + (tag[-1:] if len(tag) > 1 else b"\x01")
        tag = tag[:-1] + bytes([tag[-1] & 0x7F])
    else:
        tag = tag[:1]
    tlv = tag + bytes([len(value)]) + value
    body = b"0200" + bytes([0, 0, 0, 0, 0, 0, 0x02, 0]) + b"%03d" % len(tlv) + tlv
    outs = []
    for backend in ("native", "reference"):
        d = Decoder("iso8583", backend=backend, framing="none")
        d.feed(body)
        outs.append(d.close())
    assert outs[0] == outs[1]

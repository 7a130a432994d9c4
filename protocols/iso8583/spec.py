"""ISO 8583 specs as data (``docs/protocols/iso8583.md`` section 4): load a JSON spec by built-in name or path,
validate it (one ``ValueError`` naming the field and the key that is wrong) and compile it into the flat table
both backends decode with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache

from protocols.iso8583.tables import MAX_FIELD_LEN

SPEC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs")

MTI_ENCODINGS = {"ascii": 0, "ebcdic": 1, "bcd": 2}
BITMAPS = {"binary": 0, "hex": 1}
LENGTHS = {"fixed": 0, "L": 1, "LL": 2, "LLL": 3, "LLLL": 4}
PREFIXES = {"ascii": 0, "ebcdic": 1, "bcd": 2, "binary": 3}
DATAS = {"ascii": 0, "ebcdic": 1, "bcd": 2, "binary": 3, "hex": 4}
TOP_KEYS = {"name", "description", "mti", "bitmap", "fields"}
FIELD_KEYS = {"length", "max", "prefix", "data", "count", "pad", "tlv", "desc"}

# field flags in the compiled table (tw_iso_field.flags)
F_DEFINED, F_DIGITS, F_PAD_RIGHT, F_TLV = 1, 2, 4, 8


@dataclass(frozen=True)
class Field:
    number: int
    kind: int            # 0 fixed, 1..4 = L..LLLL
    prefix: int          # PREFIXES (variable only)
    prefix_width: int    # bytes of the length prefix
    data: int            # DATAS
    digits: bool         # bcd: length counts digits
    pad_right: bool
    tlv: bool
    max: int


@dataclass(frozen=True)
class Spec:
    name: str
    mti: int
    bitmap_hex: bool
    fields: tuple        # 129 entries, Field or None, index = field number


def prefix_width(kind: int, prefix: int) -> int:
    if kind == 0:
        return 0
    if prefix in (0, 1):  # ascii / ebcdic digits
        return kind
    return 1 if kind <= 2 else 2


def _fail(where: str, key: str, what: str):
    raise ValueError(f"ISO 8583 spec {where}: key {key!r} {what}")


def _choice(where, obj, key, table, required=True):
    if key not in obj:
        if required:
            _fail(where, key, f"is missing (one of {', '.join(table)})")
        return None
    v = obj[key]
    if not isinstance(v, str) or v not in table:
        _fail(where, key, f"must be one of {', '.join(table)}, not {v!r}")
    return table[v]


def validate(doc, origin: str = "<spec>") -> Spec:
    if not isinstance(doc, dict):
        raise ValueError(f"ISO 8583 spec {origin}: the top level must be a JSON object")
    extra = set(doc) - TOP_KEYS
    if extra:
        _fail(origin, sorted(extra)[0], f"is not a spec key (known: {', '.join(sorted(TOP_KEYS))})")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        _fail(origin, "name", "must be a non-empty string")
    if "description" in doc and not isinstance(doc["description"], str):
        _fail(origin, "description", "must be a string")
    mti = _choice(origin, doc, "mti", MTI_ENCODINGS)
    bitmap = _choice(origin, doc, "bitmap", BITMAPS)
    fields_doc = doc.get("fields")
    if not isinstance(fields_doc, dict):
        _fail(origin, "fields", "must be an object of field specs keyed \"2\"..\"128\"")
    fields: list = [None] * 129
    for key, f in fields_doc.items():
        if not (isinstance(key, str) and key.isdigit() and key == str(int(key)) and 2 <= int(key) <= 128):
            _fail(origin, "fields", f"has {key!r}, which is not a field number 2..128")
        n = int(key)
        where = f"{origin} field {key!r}"
        if not isinstance(f, dict):
            raise ValueError(f"ISO 8583 spec {where}: must be an object")
        extra = set(f) - FIELD_KEYS
        if extra:
            _fail(where, sorted(extra)[0], f"is not a field key (known: {', '.join(sorted(FIELD_KEYS))})")
        kind = _choice(where, f, "length", LENGTHS)
        data = _choice(where, f, "data", DATAS)
        mx = f.get("max")
        if not isinstance(mx, int) or isinstance(mx, bool) or not 1 <= mx <= MAX_FIELD_LEN:
            _fail(where, "max", f"must be an int 1..{MAX_FIELD_LEN}, not {mx!r}")
        if kind == 0:
            if "prefix" in f:
                _fail(where, "prefix", "is only for variable fields (length L..LLLL)")
            prefix = 0
        else:
            prefix = _choice(where, f, "prefix", PREFIXES)
            limit = 10 ** kind - 1
            if prefix == PREFIXES["binary"] and kind <= 2:
                limit = 255
            if mx > limit:
                _fail(where, "max", f"{mx} does not fit a {f['length']} {f['prefix']} length (at most {limit})")
        digits = False
        pad_right = False
        if "count" in f:
            if data != DATAS["bcd"]:
                _fail(where, "count", "is only for bcd data")
            digits = _choice(where, f, "count", {"digits": True, "bytes": False})
        if "pad" in f:
            if not digits:
                _fail(where, "pad", "is only for bcd data with count digits")
            pad_right = _choice(where, f, "pad", {"left": False, "right": True})
        tlv = f.get("tlv", False)
        if not isinstance(tlv, bool):
            _fail(where, "tlv", f"must be true or false, not {tlv!r}")
        if tlv and data not in (DATAS["binary"], DATAS["hex"]):
            _fail(where, "tlv", "needs data binary or hex")
        if "desc" in f and not isinstance(f["desc"], str):
            _fail(where, "desc", "must be a string")
        fields[n] = Field(n, kind, prefix, prefix_width(kind, prefix), data, digits, pad_right, tlv, mx)
    return Spec(name, mti, bitmap == 1, tuple(fields))


@lru_cache(maxsize=32)
def _load_path(path: str, mtime: float) -> Spec:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"ISO 8583 spec {path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return validate(doc, os.path.basename(path))


def builtin_names() -> list[str]:
    return sorted(n[:-5] for n in os.listdir(SPEC_DIR) if n.endswith(".json"))


def load(spec) -> Spec:
    """A built-in name (``iso87-binary``), a path to a ``.json`` file, or a dict (already parsed JSON)."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return validate(spec)
    if not isinstance(spec, str):
        raise ValueError(f"spec must be a built-in name ({', '.join(builtin_names())}) or a .json path")
    if spec.endswith(".json") or os.sep in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise ValueError(f"ISO 8583 spec file {spec!r} does not exist")
    else:
        path = os.path.join(SPEC_DIR, spec + ".json")
        if not os.path.isfile(path):
            raise ValueError(f"unknown ISO 8583 spec {spec!r}; built-in specs: {', '.join(builtin_names())}"
                             " (or give a path to a .json spec)")
    return _load_path(path, os.path.getmtime(path))

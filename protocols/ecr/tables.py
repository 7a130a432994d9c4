"""Generic STX/ETX ECR link tables as data (``docs/protocols/ecr.md``): the settings and their validation, the named
dialect presets with their sources, the message layouts behind the semantic events, bounds and error reasons.

Both backends take their configuration from :func:`resolve`: the C decoder receives the same values (and the same
layout tables, flattened) through ``tw_ecr_config``, so one table is the truth for every backend."""

from __future__ import annotations

from protocols.checksums import crc16_kermit, crc16_xmodem, lrc_xor, sum8
from protocols.options import boolean, integer

from dataclasses import dataclass, field
from typing import Any

#: TW_MAX_ECR_FRAME (native/tw_bounds.h): the largest `max_frame` a decoder accepts, in payload bytes.
MAX_FRAME_LIMIT = 65536
#: the default bound when neither a preset nor the caller sets one
DEFAULT_MAX_FRAME = 4096
#: integers a layout converts: at most 12 digits (a PAN has 13 or more, so no PAN can leave as an int)
MAX_INT_DIGITS = 12
#: raw bytes quoted by protocol.error (TW_MAX_ERROR_RAW); ECR errors quote at most the STX byte
MAX_ERROR_RAW = 32

CHECKSUMS = ("none", "xor", "sum", "crc16-kermit", "crc16-xmodem")
CHECKSUM_WIDTH = {"none": 0, "xor": 1, "sum": 1, "crc16-kermit": 2, "crc16-xmodem": 2}
BYTE_ORDERS = ("big", "little")

ERRORS = {
    "unexpected_byte": "A byte outside any frame that is not a link control byte.",
    "frame_restarted": "A new frame started before the previous one ended.",
    "truncated": "The stream ended inside a command.",
    "frame_over_limit": "A frame longer than the decoder's configured frame limit.",
    "bad_field": "A message field that does not hold what its layout requires.",
}

# ------------------------------------------------------------------------------------------------ layouts
# A layout is one message shape: how a payload is recognised, which semantic event it gives, and its items.
#   Recognised by code (delimited dialects): field `code_field` equals `code`; optionally field where[0] equals
#   where[1]. By length (fixed-width dialects): the payload has `length` bytes; optionally the bytes at where[0]
#   equal where[1]. Layouts are tried in order; the first that matches is taken.
# An item: (key, source, type[, value]).
#   source: F(i) field i, S(i, k) sub-field k of field i (split on `us`; a field without `us` is its own sub-field
#   0), B(a, b) the payload bytes [a, b), None for a constant.
#   type: "const" (value is the str), "str" (text, spaces stripped, scrubbed; omitted when empty),
#   "int" (1..12 ASCII digits after stripping spaces; omitted when empty; anything else is bad_field),
#   "currency" (exactly 3 ASCII digits; omitted when empty; anything else is bad_field),
#   "approved" (bool: the stripped text is one of value, a tuple of str; omitted when empty),
#   "pan" (a card number: stripped, then masked by protocols.card.mask_pan; omitted when empty),
#   "withheld" (an expiry date, a cardholder name: never emitted; when present, its bytes become '*' in the
#   frame's payload and fields and its key is listed under `withheld` in ecr.frame).


def F(i: int) -> tuple:
    return ("field", i, -1)


def S(i: int, k: int) -> tuple:
    return ("field", i, k)


def B(a: int, b: int) -> tuple:
    return ("slice", a, b)


def _msg(event: str, *items: tuple, code: str | None = None, code_field: int = 0, length: int | None = None,
         where: tuple | None = None) -> dict:
    return {"event": event, "items": list(items), "code": code, "code_field": code_field, "length": length,
            "where": where}


PROTOCOL = ("protocol", None, "const", "ecr")

# Transbank POS Integrado (Chile). Source: TransbankDevelopers/transbank-pos-sdk-nodejs src/PosIntegrado.js
# (buildSaleCommand, saleResponse, refund), the official SDK of transbankdevelopers.cl/referencia/posintegrado.
# Amounts are Chilean pesos (CLP, ISO 4217 exponent 0: the peso is the minor unit); the messages carry no currency,
# so the layouts state it (the POS Integrado terminal only works in pesos).
CLP = ("currency", None, "const", "152")
_TRANSBANK_APPROVED = ("0", "00")
TRANSBANK_MESSAGES = [
    # 0200|amount|ticket||voucher flag|status flag
    _msg("payment.request", PROTOCOL, ("kind", None, "const", "authorization"),
         ("amount_minor", F(1), "int"), CLP, ("ticket", F(2), "str"), code="0200"),
    # 0210|response code|commerce code|terminal id|ticket|auth code|amount|shares|shares amount|last 4 digits|
    #   operation number|card type|accounting date|account number|card brand|real date|real time|employee|tip|...
    _msg("payment.result",
         ("approved", F(1), "approved", _TRANSBANK_APPROVED), ("result_code", F(1), "str"),
         ("amount_minor", F(6), "int"), CLP, ("pan", F(9), "pan"), ("card", F(14), "str"), ("terminal_id", F(3), "str"),
         ("trace", F(10), "str"), ("receipt_no", F(4), "str"), ("auth_code", F(5), "str"),
         ("date", F(15), "str"), ("time", F(16), "str"), ("card_type", F(11), "str"), code="0210"),
    # 1200|operation id|  (anulación: reverses an earlier sale by its operation number)
    _msg("payment.request", PROTOCOL, ("kind", None, "const", "reversal"), ("trace", F(1), "str"), code="1200"),
    # 1210|response code|commerce code|terminal id|auth code|operation id
    _msg("payment.result",
         ("approved", F(1), "approved", _TRANSBANK_APPROVED), ("result_code", F(1), "str"),
         ("terminal_id", F(3), "str"), ("trace", F(5), "str"), ("auth_code", F(4), "str"), code="1210"),
]

# Ingenico Telium "Concert" protocol E+ (fixed-width ASCII). Sources: akretion/pypostelium pypostelium.py
# (send_message: the 34-character request) and Ousret/pyTeliumManager telium/payment.py + constant.py (the 25- and
# 80-character answers; result 0 = success, 7 = rejected, 9 = not verified; transaction type 0 debit, 1 credit).
# Matched by payload length; a request only with transaction type 0 (a debit: both sources send it for a payment,
# and the other values are named differently by the two).
CONCERT_MESSAGES = [
    # pos(2) amount(8) answer flag(1) payment mode(1) transaction type(1) currency(3) private(10) delay(4) auth(4)
    _msg("payment.request", PROTOCOL, ("kind", None, "const", "authorization"),
         ("amount_minor", B(2, 10), "int"), ("currency", B(13, 16), "currency"), ("pos_number", B(0, 2), "str"),
         length=34, where=(12, "0")),
    # pos(2) result(1) amount(8) payment mode(1) currency(3) private(10)
    _msg("payment.result",
         ("approved", B(2, 3), "approved", ("0",)), ("result_code", B(2, 3), "str"),
         ("amount_minor", B(3, 11), "int"), ("currency", B(12, 15), "currency"),
         ("pos_number", B(0, 2), "str"), ("private", B(15, 25), "str"), length=25),
    # pos(2) result(1) amount(8) payment mode(1) report(55) currency(3) private(10); the report (it may hold the card
    # number) is not taken: it reaches the output only scrubbed, inside the frame's payload
    _msg("payment.result",
         ("approved", B(2, 3), "approved", ("0",)), ("result_code", B(2, 3), "str"),
         ("amount_minor", B(3, 11), "int"), ("currency", B(67, 70), "currency"),
         ("pos_number", B(0, 2), "str"), ("private", B(70, 80), "str"), length=80),
]

# PAX POSLink (BroadPOS). Source: globalpayments/java-sdk, terminals/pax: TerminalUtilities.buildMessage (request =
# command FS version FS body), PaxController.doTransaction (T00 body = transaction type FS amount group FS account
# group FS trace group ...), AmountRequest (transaction amount is the first US sub-field; StringUtils.toNumeric:
# digits only, i.e. cents), PaxTxnType (01 sale, 02 return, 03 auth, 04 post-auth, 16 void), PaxBaseResponse and
# CreditResponse (response = status FS command FS version FS response code FS response text FS host group FS
# transaction type FS amount group FS account group FS trace group ...; 000000 = OK), HostResponse (code, message,
# auth code, host reference, trace number, batch), AmountResponse (approved amount first, cents: toAmount / 100),
# AccountResponse (account number, entry mode, expiry date, ..., card type [6], cardholder [7]), TraceResponse
# (transaction number, reference number, timestamp).
_PAX_KINDS = (("01", "authorization"), ("02", "refund"), ("03", "preauth"), ("04", "completion"),
              ("16", "reversal"))
PAX_MESSAGES = [
    _msg("payment.request", PROTOCOL, ("kind", None, "const", kind), ("amount_minor", S(3, 0), "int"),
         ("reference", S(5, 0), "str"), code="T00", where=(2, value))
    for value, kind in _PAX_KINDS
] + [
    _msg("payment.result",
         ("approved", F(3), "approved", ("000000",)), ("result_code", F(3), "str"),
         ("amount_minor", S(7, 0), "int"), ("pan", S(8, 0), "pan"), ("card", S(8, 6), "str"),
         ("trace", S(9, 0), "str"), ("auth_code", S(5, 2), "str"), ("host_code", S(5, 0), "str"),
         ("expiry", S(8, 2), "withheld"), ("cardholder", S(8, 7), "withheld"),
         code="T01", code_field=1),
]

# ------------------------------------------------------------------------------------------------ presets
# Each preset: its settings (any may be overridden) and, for the dialects whose layouts are verified, the
# semantic table. "source" is documentation only.
PRESETS: dict[str, dict[str, Any]] = {
    "concert": {
        "source": "Ingenico Telium Concert E+: pypostelium 0.0.5; pyTeliumManager; PayXpert USB/RS232 spec "
                  "(research/payment.md section 3)",
        "settings": {"stx": 0x02, "etx": 0x03, "checksum": "xor", "include_stx": False, "include_etx": True,
                     "seed": 0, "fs": None, "us": None, "ack": 0x06, "nak": 0x15, "enq": 0x05, "eot": 0x04,
                     "max_frame": 512},
        "match": "length",
        "messages": CONCERT_MESSAGES,
    },
    "transbank": {
        "source": "Transbank POS Integrado, transbankdevelopers.cl/referencia/posintegrado (LRC example) and the "
                  "official SDK transbank-pos-sdk-nodejs (field positions)",
        "settings": {"stx": 0x02, "etx": 0x03, "checksum": "xor", "include_stx": False, "include_etx": True,
                     "seed": 0, "fs": 0x7C, "us": None, "ack": 0x06, "nak": 0x15, "enq": None, "eot": None,
                     "max_frame": 8192},
        "match": "code",
        "messages": TRANSBANK_MESSAGES,
    },
    "nexi": {
        "source": "Nexi TraditionalPOS (ECR17) communication protocol, developer.nexigroup.com: XOR with base "
                  "value 0x7F; NAK on protocol, parity or LRC error",
        "settings": {"stx": 0x02, "etx": 0x03, "checksum": "xor", "include_stx": False, "include_etx": True,
                     "seed": 0x7F, "fs": None, "us": None, "ack": 0x06, "nak": 0x15, "enq": None, "eot": None,
                     "max_frame": 4096},
        "match": None,
        "messages": [],
    },
    "pax": {
        "source": "PAX POSLink / BroadPOS serial framing: FS 0x1C, US 0x1F, XOR from the byte after STX through "
                  "ETX (globalpayments/java-sdk TerminalUtilities.calculateLRC); ACK/NAK/EOT",
        "settings": {"stx": 0x02, "etx": 0x03, "checksum": "xor", "include_stx": False, "include_etx": True,
                     "seed": 0, "fs": 0x1C, "us": 0x1F, "ack": 0x06, "nak": 0x15, "enq": None, "eot": 0x04,
                     "max_frame": 8192},
        "match": "code",
        "messages": PAX_MESSAGES,
    },
}

#: the settings of Decoder("ecr") without a preset (dialect "custom")
DEFAULTS: dict[str, Any] = {"stx": 0x02, "etx": 0x03, "checksum": "xor", "include_stx": False, "include_etx": True,
                            "seed": 0, "fs": None, "us": None, "ack": 0x06, "nak": 0x15, "enq": 0x05, "eot": 0x04,
                            "max_frame": DEFAULT_MAX_FRAME, "byte_order": "little", "strict": False}

BYTE_OPTIONS = ("stx", "etx")
OPTIONAL_BYTE_OPTIONS = ("fs", "us", "ack", "nak", "enq", "eot")
BOOL_OPTIONS = ("include_stx", "include_etx", "strict")
OPTIONS = ("preset", "stx", "etx", "checksum", "byte_order", "include_stx", "include_etx", "seed", "fs", "us",
           "ack", "nak", "enq", "eot", "max_frame", "strict")

# separators may not be a digit, a space or a hyphen: splitting on one could cut a PAN-like digit sequence into
# pieces the scrubber no longer recognises
_FORBIDDEN_SEPARATORS = frozenset(b"0123456789 -")


@dataclass(frozen=True)
class Config:
    dialect: str
    stx: int
    etx: int
    checksum: str
    byte_order: str
    include_stx: bool
    include_etx: bool
    seed: int
    fs: int | None
    us: int | None
    ack: int | None
    nak: int | None
    enq: int | None
    eot: int | None
    max_frame: int
    strict: bool
    match: str | None = None
    messages: list = field(default_factory=list, compare=False, hash=False)

    @property
    def width(self) -> int:
        return CHECKSUM_WIDTH[self.checksum]


def _int(name: str, value: Any) -> int:
    return integer("ecr", name, value)


def _byte(name: str, value: Any, optional: bool) -> int | None:
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none"))):
        return None
    if value is None:
        raise ValueError(f"ecr option {name} is required: a byte value 0..255")
    v = _int(name, value)
    if not 0 <= v <= 255:
        raise ValueError(f"ecr option {name}={value!r} is not a byte: it must be 0..255 (0x00..0xFF)")
    return v


def _bool(name: str, value: Any) -> bool:
    return boolean("ecr", name, value)


def resolve(options: dict[str, Any]) -> Config:
    """The decoder's configuration from Decoder("ecr", **options): a preset (optional) with overrides, or every
    setting explicit. Raises ValueError naming what is wrong."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown ecr option(s) {', '.join(unknown)}; the options are: {', '.join(OPTIONS)}")
    preset_name = options.get("preset")
    settings = dict(DEFAULTS)
    match, messages, dialect = None, [], "custom"
    if preset_name is not None:
        if not isinstance(preset_name, str) or preset_name.strip().lower() not in PRESETS:
            raise ValueError(f"ecr preset {preset_name!r} is unknown; the presets are: {', '.join(sorted(PRESETS))}")
        dialect = preset_name.strip().lower()
        preset = PRESETS[dialect]
        settings.update(preset["settings"])
        match, messages = preset["match"], preset["messages"]
    for key, value in options.items():
        if key != "preset":
            settings[key] = value

    stx = _byte("stx", settings["stx"], False)
    etx = _byte("etx", settings["etx"], False)
    checksum = settings["checksum"]
    if not isinstance(checksum, str) or checksum.strip().lower() not in CHECKSUMS:
        raise ValueError(f"ecr option checksum={checksum!r} is unknown; use one of: {', '.join(CHECKSUMS)}")
    checksum = checksum.strip().lower()
    byte_order = settings["byte_order"]
    if not isinstance(byte_order, str) or byte_order.strip().lower() not in BYTE_ORDERS:
        raise ValueError(f"ecr option byte_order={byte_order!r} is unknown; use big or little")
    byte_order = byte_order.strip().lower()
    include_stx = _bool("include_stx", settings["include_stx"])
    include_etx = _bool("include_etx", settings["include_etx"])
    strict = _bool("strict", settings["strict"])
    seed = _int("seed", settings["seed"])
    width = CHECKSUM_WIDTH[checksum]
    top = {0: 0, 1: 0xFF, 2: 0xFFFF}[width]
    if not 0 <= seed <= top:
        if width == 0:
            raise ValueError(f"ecr option seed={settings['seed']!r}: checksum none takes no seed (use 0)")
        raise ValueError(f"ecr option seed={settings['seed']!r} is out of range for checksum {checksum}: "
                         f"it must be 0..{top} (0x{top:X})")
    opt = {name: _byte(name, settings[name], True) for name in OPTIONAL_BYTE_OPTIONS}
    max_frame = _int("max_frame", settings["max_frame"])
    if not 1 <= max_frame <= MAX_FRAME_LIMIT:
        raise ValueError(f"ecr option max_frame={settings['max_frame']!r} must be 1..{MAX_FRAME_LIMIT} payload bytes")

    if stx == etx:
        raise ValueError(f"ecr options stx and etx must differ (both are 0x{stx:02X})")
    link = {"stx": stx, "etx": etx}
    for name in ("ack", "nak", "enq", "eot"):
        if opt[name] is not None:
            link[name] = opt[name]
    seen: dict[int, str] = {}
    for name, value in link.items():
        if value in seen:
            raise ValueError(f"ecr options {seen[value]} and {name} are both 0x{value:02X}; framing and link control "
                             "bytes must be distinct")
        seen[value] = name
    fs, us = opt["fs"], opt["us"]
    if us is not None and fs is None:
        raise ValueError("ecr option us (sub-field separator) needs fs (field separator)")
    for name in ("fs", "us"):
        value = opt[name]
        if value is None:
            continue
        if value in (stx, etx):
            raise ValueError(f"ecr option {name}=0x{value:02X} is also the stx or etx byte")
        if value in _FORBIDDEN_SEPARATORS:
            raise ValueError(f"ecr option {name}=0x{value:02X} may not be a digit, a space or a hyphen (card-data "
                             "scrubbing needs digit sequences whole)")
    if fs is not None and fs == us:
        raise ValueError(f"ecr options fs and us must differ (both are 0x{fs:02X})")
    if match == "code" and fs is None:
        match, messages = None, []  # a layout by field needs the field separator
    return Config(dialect=dialect, stx=stx, etx=etx, checksum=checksum, byte_order=byte_order,
                  include_stx=include_stx, include_etx=include_etx, seed=seed, fs=fs, us=us, ack=opt["ack"],
                  nak=opt["nak"], enq=opt["enq"], eot=opt["eot"], max_frame=max_frame, strict=strict, match=match,
                  messages=messages)


# ------------------------------------------------------------------------------------------------ checksums

def checksum(name: str, data: bytes, start: int) -> int:
    """The checksum `name` of data, starting from `start` (the seed, after STX when it is included)."""
    if name == "xor":
        return lrc_xor(data, start)
    if name == "sum":
        return sum8(data, start)
    if name == "crc16-kermit":
        return crc16_kermit(data, start)
    if name == "crc16-xmodem":
        return crc16_xmodem(data, start)
    return 0


def frame(cfg: Config, payload: bytes, good: bool = True) -> bytes:
    """A frame of `payload` under cfg, with a correct checksum (or a wrong one when good is False). For tests,
    vectors and benchmarks."""
    covered = (bytes([cfg.stx]) if cfg.include_stx else b"") + payload + (bytes([cfg.etx]) if cfg.include_etx else b"")
    value = checksum(cfg.checksum, covered, cfg.seed)
    if not good:
        value ^= 0x01 if cfg.width == 1 else 0x0101
    if cfg.width == 1:
        tail = bytes([value])
    elif cfg.width == 2:
        tail = value.to_bytes(2, cfg.byte_order)
    else:
        tail = b""
    return bytes([cfg.stx]) + payload + bytes([cfg.etx]) + tail

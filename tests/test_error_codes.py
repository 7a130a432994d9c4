"""Error codes come from one X-macro list in C (native/tw_errors.h); the reference decoder's table must say the
same codes with the same reasons, since both appear verbatim in `protocol.error` events."""

from __future__ import annotations

from protocols._native import ffi, lib
from protocols.escpos import tables
from protocols.iso8583 import tables as iso_tables
from protocols.zvt import tables as zvt_tables
from protocols.ecr import tables as ecr_tables
from protocols.scanner import tables as scanner_tables
from protocols.msr import tables as msr_tables
from protocols.scale import tables as scale_tables
from protocols.display import tables as display_tables


def c_error_list() -> dict[str, str]:
    out = {}
    for code in range(1, lib.tw_error_count()):
        out[ffi.string(lib.tw_error_name(code)).decode()] = ffi.string(lib.tw_error_reason(code)).decode()
    return out


def test_reference_error_tables_match_the_c_list():
    c = c_error_list()
    for table in (tables.ERRORS, zvt_tables.ERRORS, ecr_tables.ERRORS, iso_tables.ERRORS, scanner_tables.ERRORS,
                  msr_tables.ERRORS, scale_tables.ERRORS, display_tables.ERRORS):
        for code, reason in table.items():
            assert c.get(code) == reason, code


def test_codes_are_unique_stable_identifiers_and_reasons_are_sentences():
    c = c_error_list()
    assert len(c) == lib.tw_error_count() - 1
    for code, reason in c.items():
        assert code.isidentifier() and code == code.lower()
        assert not reason[0].islower() and reason.endswith(".")


def test_api_statuses_never_appear_as_protocol_errors():
    assert {"nomem", "closed", "bad_config"} <= set(c_error_list())
    assert not {"nomem", "closed", "bad_config"} & (set(tables.ERRORS) | set(zvt_tables.ERRORS)
                                                   | set(ecr_tables.ERRORS) | set(iso_tables.ERRORS)
                                                   | set(scanner_tables.ERRORS) | set(msr_tables.ERRORS)
                                                   | set(scale_tables.ERRORS) | set(display_tables.ERRORS))

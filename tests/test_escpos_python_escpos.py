"""ESC/POS streams written by python-escpos (an independent, real client library) must decode to what was
asked for: text in several code pages, styles, alignment, every barcode it can emit, native QR, the three
image commands, cuts, drawer kicks, buzzer, and the receipts of ``simulator.receipts``.

Expectations come from the python-escpos call and docs/protocols/escpos.md, never from decoder output. The
backend is whatever ``TILLWIRE_BACKEND`` selects. Every stream is also decoded in random chunks, and the
msgpack output must be byte-identical to the one-shot decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random

import pytest

pytest.importorskip("escpos.printer", reason="python-escpos (dev extra) is not installed")
Image = pytest.importorskip("PIL.Image", reason="pillow (dev extra) is not installed")

from escpos import constants as C  # noqa: E402
from escpos.printer import Dummy  # noqa: E402

from protocols import Decoder  # noqa: E402
from protocols.decoder import unpack_events  # noqa: E402
from protocols.escpos.profiles import load_profile  # noqa: E402
from typed_equality import same  # tests/typed_equality.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: python-escpos profile whose ESC t numbering is our "generic" profile's (see simulator/receipts.py).
PROFILE = "TM-T88IV"


# --- helpers ------------------------------------------------------------------------------------------------


def printer() -> Dummy:
    return Dummy(profile=PROFILE)


def quiet(fn, *args, **kwargs):
    """python-escpos prints notices ("Using hardware barcode renderer") on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def _decode_raw(data: bytes, chunks, **options) -> bytes:
    dec = Decoder("escpos", **options)
    out = bytearray()
    pos = 0
    for size in chunks:
        out += dec.feed(data[pos : pos + size])
        pos += size
    out += dec.feed(data[pos:])
    out += dec.close()
    return bytes(out)


def decode(data: bytes, **options) -> list[dict]:
    """Events for ``data`` (fed whole, then close()); also checks that 3 random chunkings give the same bytes."""
    whole = _decode_raw(data, [], **options)
    rng = random.Random(len(data))
    for _ in range(3):
        chunks, left = [], len(data)
        while left > 0:
            n = min(left, rng.choice((1, 2, 3, 5, 8, 13, 64, 500)))
            chunks.append(n)
            left -= n
        assert _decode_raw(data, chunks, **options) == whole, f"chunking {chunks[:20]}… changed the output"
    return unpack_events(whole)


def of_type(events, kind: str) -> list[dict]:
    return [e["data"] for e in events if e["type"] == kind]


def errors(events) -> list[dict]:
    return of_type(events, "protocol.error")


def line(text: str, align: str = "left", spans=()) -> dict:
    return {"text": text, "align": align, "spans": [list(s) for s in spans]}




def assert_same(actual, expected):
    assert same(actual, expected), f"\nactual:   {actual!r}\nexpected: {expected!r}"


# --- text and code pages ------------------------------------------------------------------------------------


def test_plain_text_lines():
    p = printer()
    p.text("Hello\nWorld\n")
    p.textln("third")
    p.ln(2)
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("Hello")},
            {"type": "printer.line", "data": line("World")},
            {"type": "printer.line", "data": line("third")},
            {"type": "printer.line", "data": line("")},
            {"type": "printer.line", "data": line("")},
        ],
    )


@pytest.mark.parametrize(
    "text",
    [
        "Café €5 ÄÖÜ",
        "Crème brûlée 4.50 € · Smørrebrød",
        "Привет, мир! Квас 0,5 л",
        "Łódź Kraków Gdańsk Žluťoučký",
        "ｱﾘｶﾞﾄｳ ｺﾞｻﾞｲﾏｽ",
        "½kg £2.45 ¥300 ñandú",
        "São João — pão",
        "€ Ä € Ä € Ä",
    ],
)
def test_text_in_several_code_pages(text):
    p = printer()
    p.text(text + "\n")
    data = p.output
    # python-escpos picked tables itself; every ESC t it sent must be one our generic profile defines.
    generic = load_profile("generic")
    tables = [data[i + 2] for i in range(len(data) - 2) if data[i : i + 2] == b"\x1bt"]
    assert tables and all(generic.codepage_index[n] >= 0 for n in tables), tables
    evs = decode(data)
    assert errors(evs) == []
    assert_same(of_type(evs, "printer.line"), [line(text)])


@pytest.mark.parametrize("text", ["Café €5 ÄÖÜ", "Café € Привет ½ Łódź"])
def test_code_table_switches_mid_line(text):
    p = printer()
    p.text(text + "\n")
    data = p.output
    # ESC t 0 "Caf\x82 " ESC t 16 "\x80 5 ..." — the table changes inside the line
    assert data.count(b"\x1bt") >= 2 and data.index(b"\x1bt", 1) > data.index(b"Caf")
    assert data.index(b"\n") == len(data) - 1
    assert_same(of_type(decode(data), "printer.line"), [line(text)])


def test_code_table_persists_across_text_calls():
    p = printer()
    p.text("€1 ")  # switches to a table with €
    p.text("€2\n")  # no new ESC t: the table is still active
    p.text("plain\n")
    assert_same(of_type(decode(p.output), "printer.line"), [line("€1 €2"), line("plain")])


def _table_chars(name: str) -> str:
    codec = name.lower()
    chars = []
    for b in range(0x80, 0x100):
        if name == "CP932" and not 0xA1 <= b <= 0xDF:
            continue  # only the half-width katakana are single bytes our table 1 shares with CP932
        try:
            ch = bytes([b]).decode(codec)
        except UnicodeDecodeError:
            continue
        if len(ch) == 1 and ch not in chars:
            chars.append(ch)
    return "".join(chars)


@pytest.mark.parametrize(
    "name", ["CP437", "CP932", "CP850", "CP860", "CP863", "CP865", "CP1252", "CP866", "CP852", "CP858"]
)
def test_every_character_of_each_code_page(name):
    p = printer()
    p.charcode(name)  # forces ESC t n, then encodes everything with that table
    chars = _table_chars(name)
    p.text(chars + "\n")
    p.charcode("AUTO")
    evs = decode(p.output)
    assert errors(evs) == []
    assert_same(of_type(evs, "printer.line"), [line(chars)])


def test_control_characters():
    p = printer()
    p.text("a")
    p.control("HT")  # ESC D 8 16 24 32 NUL: tab stops, no event
    p.text("b\tc")
    p.control("CR")
    p.control("LF")
    p.text("page")
    p.control("FF")  # prints the pending line, no blank line
    p.control("FF")
    p.control("VT")  # 0b: not an ESC/POS control
    p.text("x\r\n")
    data = p.output
    evs = decode(data)
    vt = data.index(b"\x0b")
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("ab\tc")},
            {"type": "printer.line", "data": line("page")},
            {
                "type": "protocol.error",
                "data": {
                    "code": "unknown_control",
                    "reason": "A control byte that has no meaning in ESC/POS.",
                    "offset": vt,
                    "raw": b"\x0b",
                },
            },
            {"type": "printer.line", "data": line("x")},
        ],
    )


# --- styles and alignment -----------------------------------------------------------------------------------


def _styled(setup):
    p = printer()
    p.text("ab")  # plain prefix (also emits the first ESC t 0)
    setup(p)
    p.text("cd")
    p.set_with_default()
    p.text("e\n")
    return p.output


STYLE_CASES = {
    "bold": (lambda p: p.set(bold=True), {"bold": True}),
    "underline-1": (lambda p: p.set(underline=1), {"underline": 1}),
    "underline-2": (lambda p: p.set(underline=2), {"underline": 2}),
    "double-height": (lambda p: p.set(double_height=True), {"height": 2}),
    "double-width": (lambda p: p.set(double_width=True), {"width": 2}),
    "double-size": (lambda p: p.set(double_width=True, double_height=True), {"width": 2, "height": 2}),
    "custom-3x2": (lambda p: p.set(custom_size=True, width=3, height=2), {"width": 3, "height": 2}),
    "custom-1x8": (lambda p: p.set(custom_size=True, width=1, height=8), {"height": 8}),
    "custom-8x8": (lambda p: p.set(custom_size=True, width=8, height=8), {"width": 8, "height": 8}),
    "invert": (lambda p: p.set(invert=True), {"invert": True}),
    "font-b": (lambda p: p.set(font="b"), {"font": "B"}),
    "flip": (lambda p: p.set(flip=True), {"upside_down": True}),
    "smooth-is-no-style": (lambda p: p.set(smooth=True), None),
    "bold-underline-invert": (
        lambda p: p.set(bold=True, underline=1, invert=True),
        {"bold": True, "underline": 1, "invert": True},
    ),
    "everything": (
        lambda p: p.set(bold=True, underline=2, invert=True, font="b", flip=True, double_height=True),
        {"bold": True, "underline": 2, "invert": True, "font": "B", "height": 2, "upside_down": True},
    ),
    # set(double_height=...) sends ESC ! 0 first, which also clears bold (ESC ! rewrites bold/font/underline)
    "bold-then-size-resets-bold": (
        lambda p: (p.set(bold=True), p.set(double_height=True)),
        {"height": 2},
    ),
    "size-then-bold": (
        lambda p: (p.set(double_width=True), p.set(bold=True)),
        {"bold": True, "width": 2},
    ),
    # ESC ! 0 also clears underline set by ESC -
    "underline-then-size": (lambda p: (p.set(underline=1), p.set(double_width=True)), {"width": 2}),
    "custom-size-keeps-bold": (
        lambda p: (p.set(bold=True), p.set(custom_size=True, width=2, height=3)),
        {"bold": True, "width": 2, "height": 3},
    ),
}


@pytest.mark.parametrize("case", sorted(STYLE_CASES))
def test_styles(case):
    setup, style = STYLE_CASES[case]
    evs = decode(_styled(setup))
    assert errors(evs) == []
    spans = [[2, 4, style]] if style else []
    assert_same(of_type(evs, "printer.line"), [line("abcde", spans=spans)])


def test_style_key_order_on_the_wire():
    """The style map keys come in the contract's order: bold, underline, double_strike, invert, font, width,
    height, upside_down (msgpack maps keep order; the C and Python backends must agree byte for byte)."""
    p = printer()
    p.set(flip=True, font="b", invert=True, underline=1, bold=True, custom_size=True, width=2, height=2)
    p.text("x\n")
    evs = decode(p.output)
    (ln,) = of_type(evs, "printer.line")
    assert list(ln) == ["text", "align", "spans"]
    assert list(ln["spans"][0][2]) == ["bold", "underline", "invert", "font", "width", "height", "upside_down"]


def test_spans_are_maximal_runs():
    p = printer()
    p.set(bold=True)
    p.text("AB")
    p.set(bold=True)  # same style again: still one run
    p.text("C")
    p.set(underline=1)
    p.text("D")
    p.set(bold=False, underline=0)
    p.text("e")
    p.set(bold=True)
    p.text("F\n")
    evs = decode(p.output)
    assert_same(
        of_type(evs, "printer.line"),
        [
            line(
                "ABCDeF",
                spans=[[0, 3, {"bold": True}], [3, 4, {"bold": True, "underline": 1}], [5, 6, {"bold": True}]],
            )
        ],
    )


@pytest.mark.parametrize("align", ["left", "center", "right"])
def test_align(align):
    p = printer()
    p.set(align=align)
    p.text("Total 12.34\n")
    p.text("next\n")
    p.set(align="left")
    p.text("back\n")
    evs = decode(p.output)
    assert_same(of_type(evs, "printer.line"), [line("Total 12.34", align), line("next", align), line("back")])


def test_align_mid_line_is_ignored():
    p = printer()
    p.text("left ")
    p.set(align="right")  # the line already holds text: the printer ignores ESC a
    p.text("still left\n")
    p.set(align="right")
    p.text("right\n")
    evs = decode(p.output)
    assert_same(of_type(evs, "printer.line"), [line("left still left"), line("right", "right")])


def test_title_block_like_a_receipt():
    p = printer()
    p.hw("INIT")
    p.set(align="center", bold=True, double_width=True, double_height=True)
    p.text("BÄCKEREI\n")
    p.set(bold=False, normal_textsize=True)
    p.text("Hauptstraße 5\n")
    p.set(align="right", bold=True)
    p.text("TOTAL 9.99\n")
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.init", "data": {}},
            {
                "type": "printer.line",
                "data": line("BÄCKEREI", "center", [[0, 8, {"bold": True, "width": 2, "height": 2}]]),
            },
            {"type": "printer.line", "data": line("Hauptstraße 5", "center")},
            {"type": "printer.line", "data": line("TOTAL 9.99", "right", [[0, 10, {"bold": True}]])},
        ],
    )


def test_init_discards_pending_line_and_resets_state():
    p = printer()
    p.set(bold=True, align="center")
    p.text("€ never printed")  # ends in a non-default table
    p.hw("INIT")
    p._raw(b"\x80 x\n")  # 0x80 in table 0 (CP437) is Ç: ESC @ restored the default table
    evs = decode(p.output)
    assert_same(
        evs,
        [{"type": "printer.init", "data": {}}, {"type": "printer.line", "data": line("Ç x")}],
    )


def test_line_display_bytes_are_not_printed():
    """linedisplay() sends ESC = 2 (printer deselected, display selected), the display's own ESC @ and text, then
    ESC = 1: the text is not printed; the embedded display model shows it (display.md section 8), and ESC = 1
    ends the display's burst."""
    p = printer()
    p.text("before\n")
    p.linedisplay("TOTAL 12.34")
    p.text("after\n")
    evs = decode(p.output)
    assert_same(evs, [{"type": "printer.line", "data": line("before")},
                      {"type": "display.text", "data": {"lines": ["TOTAL 12.34         ", " " * 20]}},
                      {"type": "printer.line", "data": line("after")}])


def test_misc_commands_without_events():
    p = printer()
    p.hw("SELECT")
    p.hw("RESET")  # ESC ? 0a, then NUL
    p.line_spacing(30)
    p.line_spacing()
    p.panel_buttons(False)
    p.panel_buttons(True)
    p.target("ROLL")
    p.set(smooth=True)
    p.set(smooth=False)
    evs = decode(p.output)
    assert evs == []


def test_density_is_not_an_epson_command():
    """python-escpos' density sends GS | n, which ESC/POS does not define: unknown_command on the 2 bytes,
    then n is decoded as data (here 0 = NUL, a no-op)."""
    p = printer()
    p.text("a")
    p.set(density=0)
    p.text("b\n")
    data = p.output
    evs = decode(data)
    at = data.index(b"\x1d\x7c")
    assert_same(
        evs,
        [
            {
                "type": "protocol.error",
                "data": {
                    "code": "unknown_command",
                    "reason": "A command prefix followed by a function that ESC/POS does not define.",
                    "offset": at,
                    "raw": b"\x1d\x7c",
                },
            },
            {"type": "printer.line", "data": line("ab")},
        ],
    )


def test_feeds_and_slip_eject():
    p = printer()
    p.text("a")
    p.print_and_feed(3)
    p.print_and_feed(0)
    p.eject_slip()  # ESC K 192: reverse feed
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("a")},
            {"type": "printer.feed", "data": {"lines": 3}},
            {"type": "printer.feed", "data": {"lines": 0}},
            {"type": "printer.feed", "data": {"dots": -192}},
        ],
    )


def test_status_request_constants():
    p = printer()
    p._raw(C.RT_STATUS_ONLINE)
    p._raw(C.RT_STATUS_PAPER)
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.status_request", "data": {"kind": "printer", "n": 1}},
            {"type": "printer.status_request", "data": {"kind": "paper", "n": 4}},
        ],
    )


# --- barcodes -----------------------------------------------------------------------------------------------

# (python-escpos name, data, function type, our symbology, decoded data)
BARCODES = [
    ("UPC-A", "01234567890", "A", "UPCA", "01234567890"),
    ("UPC-A", "036000291452", "A", "UPCA", "036000291452"),
    ("UPC-E", "0123456", "A", "UPCE", "0123456"),
    ("UPC-E", "01234565", "A", "UPCE", "01234565"),
    ("EAN13", "4006381333931", "A", "EAN13", "4006381333931"),
    ("EAN13", "400638133393", "A", "EAN13", "400638133393"),
    ("EAN8", "40123455", "A", "EAN8", "40123455"),
    ("CODE39", "ABC-123 $%+./", "A", "CODE39", "ABC-123 $%+./"),
    ("CODE39", "*TILLWIRE*", "A", "CODE39", "*TILLWIRE*"),
    ("ITF", "12345678", "A", "ITF", "12345678"),
    ("NW7", "A12345B", "A", "CODABAR", "A12345B"),
    ("CODABAR", "c0-1$2:3/4.5+d", "A", "CODABAR", "c0-1$2:3/4.5+d"),
    ("UPC-A", "01234567890", "B", "UPCA", "01234567890"),
    ("UPC-E", "01234565", "B", "UPCE", "01234565"),
    ("EAN13", "4006381333931", "B", "EAN13", "4006381333931"),
    ("EAN8", "40123455", "B", "EAN8", "40123455"),
    ("CODE39", "TILL-42", "B", "CODE39", "TILL-42"),
    ("ITF", "0012345678", "B", "ITF", "0012345678"),
    ("NW7", "B9876D", "B", "CODABAR", "B9876D"),
    ("CODE93", "Code 93!", "B", "CODE93", "Code 93!"),
    ("CODE93", "TAB\tX\x7f", "B", "CODE93", "TAB\tX\x7f"),
    ("CODE128", "{BABC123", "B", "CODE128", "ABC123"),
    ("CODE128", "{Bhello, world", "B", "CODE128", "hello, world"),
    ("CODE128", "{AHELLO\x09", "B", "CODE128", "HELLO\t"),
    ("CODE128", "{C\x0c\x22\x38\x4e", "B", "CODE128", "12345678"),
    ("CODE128", "{C\x00\x05\x63", "B", "CODE128", "000599"),
    ("CODE128", "{B12{C\x22\x38", "B", "CODE128", "123456"),
    ("CODE128", "{C\x0c{BAB", "B", "CODE128", "12AB"),
    ("CODE128", "{C\x7f", "B", "CODE128", "\ufffd"),
    ("CODE128", "{B{{x", "B", "CODE128", "{x"),
    ("CODE128", "{BAB{1CD", "B", "CODE128", "AB\x1dCD"),
    ("CODE128", "{B{1AB", "B", "CODE128", "AB"),
    ("CODE128", "{BA{2B{3C{4D", "B", "CODE128", "ABCD"),
    ("CODE128", "{BA{SbC", "B", "CODE128", "AbC"),
    ("CODE128", "{Bx{", "B", "CODE128", "x{"),
    ("CODE128", "{Bx{Z", "B", "CODE128", "x{Z"),
    ("GS1-128", "{A{10112345678901231", "B", "GS1-128", "0112345678901231"),
    ("GS1-128", "{C{1\x01\x0c\x22{1{B10ABC", "B", "GS1-128", "011234\x1d10ABC"),
    ("GS1 DATABAR OMNIDIRECTIONAL", "0401234512345", "B", "GS1-DATABAR-OMNI", "0401234512345"),
    ("GS1 DATABAR TRUNCATED", "0401234512345", "B", "GS1-DATABAR-TRUNCATED", "0401234512345"),
    ("GS1 DATABAR LIMITED", "1012345678901", "B", "GS1-DATABAR-LIMITED", "1012345678901"),
    ("GS1 DATABAR EXPANDED", "(01)90012345678908(3103)001750", "B", "GS1-DATABAR-EXPANDED",
     "(01)90012345678908(3103)001750"),
]


@pytest.mark.parametrize("bc,data,fn,symbology,expected", BARCODES, ids=lambda v: v if isinstance(v, str) else None)
def test_barcodes(bc, data, fn, symbology, expected):
    p = printer()
    quiet(p.barcode, data, bc, function_type=fn)
    raw = p.output
    m = raw[raw.index(b"\x1dk") + 2]
    assert (m < 65) == (fn == "A")
    evs = decode(raw)
    assert_same(evs, [{"type": "printer.barcode", "data": {"symbology": symbology, "data": expected}}])


def test_barcode_flushes_pending_line_and_its_align_is_ignored():
    p = printer()
    p.text("Receipt 12")  # no LF: the barcode prints it first
    quiet(p.barcode, "4006381333931", "EAN13")  # sends ESC a 1 while the line holds text: ignored
    p.text("after\n")
    p.set(align="center")
    p.text("centred\n")
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("Receipt 12")},
            {"type": "printer.barcode", "data": {"symbology": "EAN13", "data": "4006381333931"}},
            {"type": "printer.line", "data": line("after")},
            {"type": "printer.line", "data": line("centred", "center")},
        ],
    )


def test_barcode_align_applies_to_following_lines():
    p = printer()
    quiet(p.barcode, "{B123", "CODE128", function_type="B")  # ESC a 1 with an empty line: centre from now on
    p.text("under the barcode\n")
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.barcode", "data": {"symbology": "CODE128", "data": "123"}},
            {"type": "printer.line", "data": line("under the barcode", "center")},
        ],
    )


# --- QR codes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "https://receipts.example.com/r/1234567890",
        "Grüße aus Köln — €12,50",
        "1234567890" * 20,
        "x",
    ],
)
@pytest.mark.parametrize("ec", [C.QR_ECLEVEL_L, C.QR_ECLEVEL_H])
def test_native_qr(content, ec):
    p = printer()
    p.text("scan me")
    p.qr(content, native=True, size=4, ec=ec)
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("scan me")},
            {"type": "printer.code2d", "data": {"symbology": "QR", "data": content}},
        ],
    )


def test_native_qr_model_1_and_repeated():
    p = printer()
    p.qr("first", native=True, model=C.QR_MODEL_1, size=3)
    p.qr("second", native=True, size=8)
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.code2d", "data": {"symbology": "QR", "data": "first"}},
            {"type": "printer.code2d", "data": {"symbology": "QR", "data": "second"}},
        ],
    )


def test_image_qr_is_a_raster_image():
    qrcode = pytest.importorskip("qrcode")
    code = qrcode.QRCode(version=None, box_size=3, border=1)
    code.add_data("hi")
    code.make(fit=True)
    side = (code.modules_count + 2) * 3
    p = printer()
    quiet(p.qr, "hi", size=3)  # not native: python-escpos renders it and sends GS v 0
    evs = decode(p.output)
    assert [e["type"] for e in evs] == ["printer.line", "printer.image", "printer.line", "printer.line"]
    img = evs[1]["data"]
    assert (img["kind"], img["width"], img["height"]) == ("raster", (side + 7) // 8 * 8, side)
    assert all(e["data"] == line("") for e in evs if e["type"] == "printer.line")


# --- images -------------------------------------------------------------------------------------------------

PATTERNS = {
    "solid": lambda x, y: 1,
    "checker": lambda x, y: (x + y) & 1,
    "vstripes": lambda x, y: (x // 3) & 1,
    "hstripes": lambda x, y: y % 5 == 0,
    "frame": lambda x, y: 1 if x in (0, 1) or y == 0 else 0,
    "diag": lambda x, y: (x * 7 + y * 3) % 11 < 4,
}

SIZES = [(1, 1), (8, 1), (8, 8), (16, 2), (10, 5), (33, 49), (64, 24), (100, 30), (7, 25), (200, 3)]


def make_image(w: int, h: int, pattern: str):
    """PIL "L" image: 0 (black, printed) where the pattern is 1, else 255; returns (image, pixel rows)."""
    fn = PATTERNS[pattern]
    px = [[1 if fn(x, y) else 0 for x in range(w)] for y in range(h)]
    data = bytes(0 if v else 255 for row in px for v in row)
    return Image.frombytes("L", (w, h), data), px


def rows_1bpp(px, width: int, height: int) -> bytes:
    """The contract's image bits: ``height`` rows of ``width`` dots, MSB = leftmost, rows padded to bytes;
    pixels outside ``px`` are 0."""
    stride = (width + 7) // 8
    out = bytearray(stride * height)
    for y, row in enumerate(px[:height]):
        for x, v in enumerate(row[:width]):
            if v:
                out[y * stride + (x >> 3)] |= 0x80 >> (x & 7)
    return bytes(out)


def _expect_image(kind: str, width: int, height: int, bits: bytes, with_bits: bool) -> dict:
    d = {"kind": kind, "width": width, "height": height, "sha256": hashlib.sha256(bits).hexdigest()}
    if with_bits:
        d["bits"] = bits
    return d


def expected_image(impl: str, w: int, h: int, px, with_bits: bool, high_density: bool = True) -> dict:
    if impl == "bitImageRaster":  # GS v 0: width in whole bytes
        width, height, kind = (w + 7) // 8 * 8, h, "raster"
    elif impl == "graphics":  # GS ( L fn 70: exact width in dots
        width, height, kind = w, h, "graphics"
    else:  # ESC *: one 24-dot (8-dot in low density) stripe per LF, merged into one group
        stripe = 24 if high_density else 8
        width, height, kind = w, -(-h // stripe) * stripe, "bitimage"
    return _expect_image(kind, width, height, rows_1bpp(px, width, height), with_bits)


IMPLS = ["bitImageRaster", "graphics", "bitImageColumn"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_images_with_bits(impl, size, pattern):
    img, px = make_image(*size, pattern)
    p = printer()
    quiet(p.image, img, impl=impl)
    evs = decode(p.output, images=True)
    expected = expected_image(impl, *size, px, with_bits=True)
    assert_same(evs, [{"type": "printer.image", "data": expected}])
    assert evs[0]["data"]["sha256"] == hashlib.sha256(evs[0]["data"]["bits"]).hexdigest()


@pytest.mark.parametrize("impl", IMPLS)
def test_images_without_bits(impl):
    img, px = make_image(40, 30, "diag")
    p = printer()
    quiet(p.image, img, impl=impl)
    evs = decode(p.output)
    assert_same(evs, [{"type": "printer.image", "data": expected_image(impl, 40, 30, px, with_bits=False)}])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("hv", [(True, False), (False, True), (False, False)])
def test_images_low_density(impl, hv):
    horizontal, vertical = hv
    img, px = make_image(20, 17, "checker")
    p = printer()
    quiet(p.image, img, impl=impl, high_density_horizontal=horizontal, high_density_vertical=vertical)
    evs = decode(p.output, images=True)
    expected = expected_image(impl, 20, 17, px, with_bits=True, high_density=vertical)
    assert_same(evs, [{"type": "printer.image", "data": expected}])


def test_image_modes_rgba_and_1bit():
    """Transparent pixels become white, mode "1" input is taken as is (black = printed)."""
    w, h = 12, 4
    rgba = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    for x in range(w):
        rgba.putpixel((x, 1), (0, 0, 0, 255))
    one = Image.new("1", (w, h), 1)
    for y in range(h):
        one.putpixel((3, y), 0)
    p = printer()
    quiet(p.image, rgba)
    quiet(p.image, one)
    evs = decode(p.output, images=True)
    px_rgba = [[1 if y == 1 else 0 for x in range(w)] for y in range(h)]
    px_one = [[1 if x == 3 else 0 for x in range(w)] for y in range(h)]
    assert_same(
        evs,
        [
            {"type": "printer.image", "data": expected_image("bitImageRaster", w, h, px_rgba, True)},
            {"type": "printer.image", "data": expected_image("bitImageRaster", w, h, px_one, True)},
        ],
    )


def test_centred_raster_image_is_padded_to_media_width():
    img, px = make_image(16, 4, "solid")
    p = printer()
    quiet(p.image, img, center=True)  # python-escpos pastes it into a 512-dot wide image
    evs = decode(p.output, images=True)
    off = (512 - 16) // 2
    wide = [[0] * off + row + [0] * (512 - 16 - off) for row in px]
    assert_same(evs, [{"type": "printer.image", "data": expected_image("bitImageRaster", 512, 4, wide, True)}])


@pytest.mark.parametrize("impl", ["bitImageRaster", "graphics"])
def test_tall_image_is_split_at_960_rows(impl):
    img, px = make_image(16, 1000, "hstripes")
    p = printer()
    quiet(p.image, img, impl=impl)
    evs = decode(p.output, images=True)
    assert_same(
        evs,
        [
            {"type": "printer.image", "data": expected_image(impl, 16, 960, px[:960], True)},
            {"type": "printer.image", "data": expected_image(impl, 16, 40, px[960:], True)},
        ],
    )


def test_tall_column_image_fragments_merge_into_one_group():
    """python-escpos sends the two fragments as ESC 3, stripes, ESC 2, ESC 3, stripes, ESC 2: nothing that prints
    comes between the stripes (same m and n), so the contract makes them one bit-image group."""
    img, px = make_image(16, 1000, "hstripes")
    p = printer()
    quiet(p.image, img, impl="bitImageColumn")
    evs = decode(p.output, images=True)
    # fragment 1: 960 rows = 40 stripes; fragment 2: 40 rows padded to 48
    rows = px[:960] + px[960:] + [[0] * 16] * 8
    bits = rows_1bpp(rows, 16, 1008)
    assert_same(evs, [{"type": "printer.image", "data": _expect_image("bitimage", 16, 1008, bits, True)}])


def test_column_images_of_equal_width_merge_and_text_separates_them():
    a, pa = make_image(24, 24, "checker")
    b, pb = make_image(24, 10, "solid")
    c, pc = make_image(30, 10, "solid")
    p = printer()
    quiet(p.image, a, impl="bitImageColumn")
    quiet(p.image, b, impl="bitImageColumn")  # same m and n: continues the group
    quiet(p.image, c, impl="bitImageColumn")  # another n: a new group
    p.text("caption\n")  # text emits the open group first
    quiet(p.image, b, impl="bitImageColumn")
    evs = decode(p.output, images=True)
    merged = pa + pb + [[0] * 24] * 14
    assert_same(
        evs,
        [
            {"type": "printer.image", "data": _expect_image("bitimage", 24, 48, rows_1bpp(merged, 24, 48), True)},
            {"type": "printer.image", "data": expected_image("bitImageColumn", 30, 10, pc, True)},
            {"type": "printer.line", "data": line("caption")},
            {"type": "printer.image", "data": expected_image("bitImageColumn", 24, 10, pb, True)},
        ],
    )


def test_images_flush_pending_text():
    img, px = make_image(8, 2, "solid")
    p = printer()
    for impl in ("bitImageRaster", "graphics"):
        p.text(impl)  # no LF: the image prints this line first
        quiet(p.image, img, impl=impl)
    p.text("column\n")
    quiet(p.image, img, impl="bitImageColumn")
    p.text("end\n")  # text closes the open bit-image group
    evs = decode(p.output)
    assert [(e["type"], e["data"].get("text", e["data"].get("kind"))) for e in evs] == [
        ("printer.line", "bitImageRaster"),
        ("printer.image", "raster"),
        ("printer.line", "graphics"),
        ("printer.image", "graphics"),
        ("printer.line", "column"),
        ("printer.image", "bitimage"),
        ("printer.line", "end"),
    ]


# --- cuts, drawer, buzzer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, [{"type": "printer.feed", "data": {"lines": 6}}, {"type": "printer.cut", "data": {"partial": False}}]),
        (
            {"mode": "PART"},
            [{"type": "printer.feed", "data": {"lines": 6}}, {"type": "printer.cut", "data": {"partial": True}}],
        ),
        ({"feed": False}, [{"type": "printer.cut", "data": {"partial": True, "feed": 0}}]),
        ({"mode": "PART", "feed": False}, [{"type": "printer.cut", "data": {"partial": True, "feed": 0}}]),
    ],
)
def test_cuts(kwargs, expected):
    p = printer()
    p.cut(**kwargs)
    assert_same(decode(p.output), expected)


def test_cut_prints_pending_line_first():
    p = printer()
    p.text("last line")
    p.cut(feed=False)
    p.text("tail")
    p.cut()
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {"type": "printer.line", "data": line("last line")},
            {"type": "printer.cut", "data": {"partial": True, "feed": 0}},
            {"type": "printer.line", "data": line("tail")},
            {"type": "printer.feed", "data": {"lines": 6}},
            {"type": "printer.cut", "data": {"partial": False}},
        ],
    )


@pytest.mark.parametrize(
    "pin,expected",
    [
        (2, {"pin": 2, "on_ms": 100, "off_ms": 100}),
        (5, {"pin": 5, "on_ms": 100, "off_ms": 100}),
        ((27, 112, 48, 25, 255), {"pin": 2, "on_ms": 50, "off_ms": 510}),
        ((27, 112, 49), {"pin": 5, "on_ms": 100, "off_ms": 100}),
        ((27, 112, 0, 0, 0), {"pin": 2, "on_ms": 0, "off_ms": 0}),
        ((27, 112, 1, 120, 240), {"pin": 5, "on_ms": 240, "off_ms": 480}),
    ],
)
def test_cashdraw(pin, expected):
    p = printer()
    p.text("no flush")
    p.cashdraw(pin)
    p.text("\n")
    evs = decode(p.output)
    # a kick does not print: the pending line is still one line
    assert_same(
        evs,
        [{"type": "drawer.kick", "data": expected}, {"type": "printer.line", "data": line("no flush")}],
    )


def test_cashdraw_bad_pin_resumes_after_m():
    """m = 7 is no pin: bad_parameter on ESC p m; t1 t2 (here "A" "B") are decoded as normal data."""
    p = printer()
    p.cashdraw((27, 112, 7, 65, 66))
    evs = decode(p.output)
    assert_same(
        evs,
        [
            {
                "type": "protocol.error",
                "data": {
                    "code": "bad_parameter",
                    "reason": "A known command with a parameter outside its documented values.",
                    "offset": 0,
                    "raw": b"\x1bp\x07",
                },
            },
            {"type": "printer.line", "data": line("AB")},
        ],
    )


@pytest.mark.parametrize("times,duration", [(2, 4), (1, 1), (9, 9)])
def test_buzzer(times, duration):
    p = printer()
    p.buzzer(times, duration)
    p._raw(C.BEEP)
    assert_same(
        decode(p.output),
        [
            {"type": "printer.buzzer", "data": {"command": "ESC B", "params": bytes([times, duration])}},
            {"type": "printer.buzzer", "data": {"command": "BEL", "params": b""}},
        ],
    )


# --- whole receipts from the simulator ----------------------------------------------------------------------


def test_simulated_receipts_decode_cleanly():
    from simulator.receipts import receipt

    rng = random.Random(1234)
    for i in range(40):
        data = receipt(i, rng=rng)
        evs = decode(data)
        assert errors(evs) == [], (i, errors(evs)[:3])
        kinds = [e["type"] for e in evs]
        assert kinds[0] == "printer.init"
        assert kinds.count("printer.cut") == 1
        assert kinds.count("printer.code2d") == 1
        (bc,) = of_type(evs, "printer.barcode")
        assert bc["symbology"] == "CODE128" and bc["data"].isdigit() and len(bc["data"]) == 10
        (qr,) = of_type(evs, "printer.code2d")
        assert qr["data"] == f"https://receipts.example.com/r/{bc['data']}"
        texts = [ln["text"] for ln in of_type(evs, "printer.line")]
        assert f"Receipt No. {bc['data']}" in texts
        assert any(t.startswith("TOTAL EUR ") for t in texts)
        assert all("\ufffd" not in t and "?" not in t for t in texts)
        if "drawer.kick" in kinds:
            assert any(t.startswith("Cash") for t in texts)


def test_simulated_foreign_line_roundtrips():
    from simulator.receipts import receipt

    rng = random.Random(99)
    found = 0
    for i in range(60):
        texts = [ln["text"] for ln in of_type(decode(receipt(i, rng=rng)), "printer.line")]
        found += "Café €5 ÄÖÜ · Спасибо · Łódź · ｱﾘｶﾞﾄｳ" in texts
    assert found > 0


def test_corpus_is_deterministic_and_big_enough():
    from simulator.receipts import corpus

    a = corpus(64 * 1024, seed=3)
    assert len(a) >= 64 * 1024
    assert a == corpus(64 * 1024, seed=3)
    assert a != corpus(64 * 1024, seed=4)
    assert a.startswith(b"\x1b@")


SESSIONS = os.path.join(ROOT, "sessions", "escpos")


def test_sample_sessions_are_current(tmp_path):
    from simulator.receipts import write_samples

    for path in write_samples(tmp_path):
        name = os.path.basename(path)
        with open(path, "rb") as fresh, open(os.path.join(SESSIONS, name), "rb") as committed:
            assert fresh.read() == committed.read(), f"sessions/escpos/{name} is stale: python -m simulator.receipts"


@pytest.mark.parametrize("name", ["grocery-card.bin", "cash-drawer.bin", "images-codepages.bin", "status-replies.bin"])
def test_sample_sessions_decode_cleanly(name):
    with open(os.path.join(SESSIONS, name), "rb") as fh:
        evs = decode(fh.read(), images=True)
    assert errors(evs) == []
    kinds = {e["type"] for e in evs}
    if name == "cash-drawer.bin":
        assert "drawer.kick" in kinds
    if name == "images-codepages.bin":
        assert sorted(d["kind"] for d in of_type(evs, "printer.image")) == ["bitimage", "graphics", "raster"]
        texts = [ln["text"] for ln in of_type(evs, "printer.line")]
        assert "Café €5 ÄÖÜ" in texts and "ｱﾘｶﾞﾄｳ ｺﾞｻﾞｲﾏｽ" in texts and "Квас 0,5 л            1.99 €" in texts


def test_sample_status_replies():
    with open(os.path.join(SESSIONS, "status-replies.bin"), "rb") as fh:
        requests = of_type(decode(fh.read()), "printer.status_request")
    assert [(r["kind"], r["n"]) for r in requests] == [
        ("printer", 1), ("paper", 4), ("id", 1), ("id", 67), ("asb", 15), ("paper_sensor", 1), ("offline", 2)
    ]
    dec = Decoder("escpos", direction="from_device")
    for r in requests:
        dec.note_request(r["kind"], r["n"])
    with open(os.path.join(SESSIONS, "status-replies.from_device.bin"), "rb") as fh:
        evs = dec.events(fh.read()) + dec.close_events()
    assert_same(
        evs,
        [
            {"type": "printer.status", "data": {"kind": "printer", "online": True, "drawer_open": True, "raw": b"\x16"}},
            {"type": "drawer.status", "data": {"open": True}},
            {"type": "printer.status", "data": {"kind": "paper", "paper": "near_end", "raw": b"\x1e"}},
            {"type": "printer.info", "data": {"kind": "id", "n": 1, "value": 32}},
            {"type": "printer.info", "data": {"kind": "id", "n": 67, "value": "TM-T88IV"}},
            {
                "type": "printer.asb",
                "data": {
                    "kind": "asb",
                    "online": True,
                    "cover_open": False,
                    "paper": "ok",
                    "drawer_open": True,
                    "error": False,
                    "raw": b"\x14\x00\x00\x0f",
                },
            },
            {"type": "drawer.status", "data": {"open": True}},
            {"type": "printer.status", "data": {"kind": "paper_sensor", "paper": "near_end", "raw": b"\x03"}},
            {
                "type": "printer.status",
                "data": {"kind": "offline", "online": False, "cover_open": False, "paper": "out", "error": False,
                         "raw": b"\x32"},
            },
        ],
    )

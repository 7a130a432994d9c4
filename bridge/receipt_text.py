"""Render decoded events as a person reads them (``tillwire decode --format text``): printer events as the
receipt, payment-link events as a transcript."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from bridge.currencies import format_amount


def _place(text: str, align: str, width: int) -> str:
    if align == "center":
        return text.center(width).rstrip()
    if align == "right":
        return text.rjust(width)
    return text


def _widened(text: str, spans: list) -> str:
    """Double-width runs are shown with a space after each character, as they occupy two columns on paper."""
    if not spans:
        return text
    out = []
    widths = [1] * len(text)
    for start, end, style in spans:
        for k in range(start, min(end, len(text))):
            widths[k] = int(style.get("width", 1))
    for ch, w in zip(text, widths):
        out.append(ch + " " * (w - 1))
    return "".join(out)


def render_event(body: dict, width: int) -> list[str]:
    kind, data = body["type"], body["data"]
    if kind == "printer.line":
        return [_place(_widened(data["text"], data["spans"]), data["align"], width)]
    if kind == "printer.feed":
        lines = data.get("lines", 0)
        return [""] * lines if lines > 0 else []
    if kind == "printer.cut":
        return [("- " * (width // 2) if data["partial"] else "=" * width).rstrip(), ""]
    if kind == "printer.barcode":
        return [_place(f"|||| {data['symbology']} {data['data']} ||||", "center", width)]
    if kind == "printer.code2d":
        value = data["data"]
        shown = value if isinstance(value, str) else f"<{len(value)} bytes>"
        return [_place(f"[{data['symbology']}: {shown}]", "center", width)]
    if kind == "printer.image":
        if "width" in data:
            return [_place(f"[image {data['kind']} {data['width']}x{data['height']}]", "center", width)]
        return [_place(f"[image {data['kind']} {data.get('key', '')}]", "center", width)]
    if kind == "drawer.kick":
        return [f"[drawer kick: pin {data['pin']}, {data['on_ms']} ms]"]
    if kind == "drawer.status":
        return [f"[drawer {'open' if data['open'] else 'closed'}]"]
    if kind == "protocol.error":
        return [f"[protocol.error {data['code']} at byte {data['offset']}]"]
    if kind.startswith(("link.", "payment.", "zvt.", "iso8583.", "ecr.")):
        return _render_payment(kind, data)
    if kind in ("scanner.data", "msr.swipe"):
        return _render_scan(kind, data)
    if kind.startswith("scale."):
        return _render_scale(kind, data)
    if kind in ("display.text", "display.control"):
        return _render_display(kind, data)
    if kind == "printer.status_request":
        return [f"[status request: {data['kind']} (n={data['n']})]"]
    if kind in ("printer.status", "printer.asb", "printer.info"):
        fields = ", ".join(f"{k}={v}" for k, v in data.items() if k != "raw")
        return [f"[{kind} {fields}]"]
    return []


def _shown_label(label: str) -> str:
    """A scanned label on one line: GS (the transmitted FNC1) as <GS>, other control characters as \\xNN."""
    return "".join("<GS>" if c == "\x1d" else f"\\x{ord(c):02x}" if ord(c) < 0x20 or c == "\x7f" else c
                   for c in label)


def _render_scan(kind: str, data: dict) -> list[str]:
    """scanner.data: "SCAN  <symbology> <label>", UPC-E with its UPC-A, GS1 AIs in (AI)value form on the next line;
    msr.swipe: the masked PAN and the tracks read."""
    if kind == "msr.swipe":
        read = data.get("tracks", [])
        tracks = (f"track{'s' if len(read) > 1 else ''} {', '.join(str(t) for t in read)}" if read
                  else "no track read")
        return [f"SWIPE card {data['pan'] if data.get('pan') else '(no PAN)'} ({tracks})"]
    line = f"SCAN  {data['symbology']} {_shown_label(data['label'])}".rstrip()
    if "expanded" in data:
        line += f" (UPC-A {data['expanded']})"
    lines = [line]
    if data.get("gs1"):
        lines.append("      " + " ".join(f"({ai}){value}" for ai, value in data["gs1"].items()))
    return lines


# the fewest decimals a weight is shown with, per unit (more when the scale sent them)
_WEIGHT_DECIMALS = {"kg": 3, "lb": 2, "oz": 1, "g": 0}
# UnifiedPOS Scale status -> words
_SCALE_STATUS = {11: "stable", 12: "in motion", 13: "at zero", 14: "over capacity", 15: "not ready",
                 16: "under zero", 17: "under weight"}


def format_weight(milli: int, unit: str) -> str:
    """value_milli as a decimal in its unit, from the integer (never a float): 1250 kg -> "1.250 kg"."""
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), 1000)
    digits = f"{frac:03d}"
    keep = _WEIGHT_DECIMALS.get(unit, 3)
    while len(digits) > keep and digits.endswith("0"):
        digits = digits[:-1]
    return f"{sign}{whole}{'.' + digits if digits else ''} {unit}"


def _render_scale(kind: str, data: dict) -> list[str]:
    """scale.weight: "WEIGHT  1.250 kg" with unstable/net marks; scale.status: "SCALE   <UnifiedPOS status>" with
    faults; scale.request: the till's poll as a detail line."""
    if kind == "scale.weight":
        marks = [m for m, on in (("unstable", not data["stable"]), ("net", data["net"])) if on]
        return [f"WEIGHT  {format_weight(data['value_milli'], data['unit'])}"
                + (f" ({', '.join(marks)})" if marks else "")]
    if kind == "scale.status":
        words = _SCALE_STATUS.get(data["upos_status"], str(data["upos_status"]))
        extra = [*data.get("faults", [])] + (["net"] if data.get("net") else [])
        if "unit" in data:
            extra.append(f"unit {data['unit']}")
        return [f"SCALE   {words}" + (f" ({', '.join(extra)})" if extra else "")]
    if kind == "scale.request":
        return [f"  · till asks: {data['name']} ({data['command']})"]
    return []


_DISPLAY_MODES = {1: "overwrite", 2: "vertical scroll", 3: "horizontal scroll"}


def _render_display(kind: str, data: dict) -> list[str]:
    """display.text: the customer display's rows as they look, between bars (blanks kept, so the layout shows);
    display.control: one bracketed line."""
    if kind == "display.control":
        setting, value = data["setting"], data["value"]
        if setting == "mode":
            return [f"[display mode: {_DISPLAY_MODES.get(value, value)}]"]
        if setting in ("cursor", "reverse", "user_chars"):
            return [f"[display {setting.replace('_', ' ')} {'on' if value else 'off'}]"]
        return [f"[display {setting} {value}]"]
    rows = [_shown_label(row) for row in data["lines"]]
    return [("DISPLAY |" if k == 0 else "        |") + row + "|" for k, row in enumerate(rows)]


def _money(data: dict) -> str:
    if "amount_minor" not in data:
        return ""
    return " " + format_amount(data["amount_minor"], data.get("currency"))


# payment.result keys shown after the verdict, with their labels, in this order
_RESULT_DETAILS = (("pan", "card"), ("card", ""), ("entry", ""), ("terminal_id", "TID"), ("trace", "trace"),
                   ("receipt_no", "receipt"), ("rrn", "RRN"), ("auth_code", "auth"), ("aid", "AID"), ("date", "date"),
                   ("time", "time"))


def _render_payment(kind: str, data: dict) -> list[str]:
    """The payment dialogue as a transcript: semantic events as the main lines, protocol detail as '·' lines."""
    if kind in ("link.ack", "link.nak", "link.enq", "link.eot"):
        return [f"  · [{kind[5:].upper()}]"]
    if kind == "link.checksum_error":
        return [f"  · [checksum error: expected {data['expected']:04x}, got {data['got']:04x}]"]
    if kind == "zvt.apdu":
        return [f"  · zvt {data['name']} ({data['class']:02X} {data['instr']:02X}, {data['length']} bytes)"]
    if kind == "iso8583.message":
        fields = ",".join(sorted(data.get("fields", {}), key=lambda f: int(f) if f.isdigit() else 0))
        return [f"  · iso8583 {data['mti']} fields {fields}"]
    if kind == "ecr.frame":
        shown = data.get("fields")
        if shown is not None:
            text = "|".join("/".join(f) if isinstance(f, list) else f for f in shown)
        else:
            text = data["payload"].decode("latin-1") if isinstance(data["payload"], bytes) else str(data["payload"])
        return [f"  · ecr {data['dialect']}: {text}"]
    if kind == "payment.request":
        extras = "".join(f" {k}={v}" for k, v in data.items()
                         if k not in ("protocol", "kind", "amount_minor", "currency"))
        return [f"REQUEST  {data['kind']}{_money(data)}{extras}"]
    if kind == "payment.status":
        code = f"{data['code']:02X} " if "code" in data else ""
        return [f"STATUS   {code}{data.get('text', '')}".rstrip()]
    if kind == "payment.result":
        verdict = "APPROVED" if data.get("approved") else "DECLINED"
        code = f" (result {data['result_code']})" if "result_code" in data else ""
        details = [f"{label} {data[key]}".strip() for key, label in _RESULT_DETAILS if key in data]
        lines = [f"RESULT   {verdict}{_money(data)}{code}"]
        if details:
            lines.append("         " + ", ".join(details))
        return lines
    if kind == "payment.receipt_line":
        return [f"  | {data['text']}"]
    if kind == "payment.eod":
        lines = [f"END OF DAY  {data.get('count', '?')} transactions{_money(data)}"]
        for total in data.get("totals", []):
            lines.append(f"         {total.get('card', '?')}: {total.get('count', '?')}{_money(total)}")
        return lines
    return []


def summarize(name: str, bodies: Iterable[dict]) -> str:
    """One line per file: the number of events of each type, errors last so they stand out."""
    counts = Counter(b["type"] for b in bodies)
    errors = counts.pop("protocol.error", 0)
    parts = [f"{n} {kind}" for kind, n in sorted(counts.items())]
    parts.append(f"{errors} protocol.error")
    return f"{name}: {sum(counts.values()) + errors} events — " + ", ".join(parts)


def one_line(body: dict, limit: int = 100) -> str:
    """An event as one short line (the bridge's live output, ``tillwire tail --format text``)."""
    kind, data = body["type"], body.get("data") or {}
    if kind == "device.status":
        shown = f"{data.get('state', '?')} {data.get('transport', '')}"
        if data.get("reason"):
            shown += f" ({data['reason']})"
        if data.get("retry_s") is not None:
            shown += f", retry in {data['retry_s']} s"
        return shown if len(shown) <= limit else shown[: limit - 1] + "…"
    try:
        shown = " / ".join(part.strip(" ·|") for part in render_event(body, 42) if part.strip(" -=·|"))
    except (KeyError, TypeError, ValueError, AttributeError):  # a field this version does not know the shape of
        shown = ""
    if not shown and kind == "printer.line" and not data.get("text"):
        return "(blank line)"
    if not shown and isinstance(data, dict):
        shown = " ".join(f"{k}={_short(v)}" for k, v in data.items())
    shown = " ".join(shown.split())
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _short(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.hex() if len(value) <= 8 else value[:8].hex() + "…"
    if isinstance(value, (list, dict)):
        return f"<{len(value)}>"
    return str(value)

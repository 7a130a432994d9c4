"""ZVT dialogues between a till (ECR) and a payment terminal (PT), built from the spec (PA00P015 / PA00P016),
independently of the decoders: APDUs are assembled from BMPs here and framed for serial (DLE STX ... DLE ETX
CRC-16/KERMIT, link ACKs) or TCP (bare APDUs).

    from simulator.zvt_dialogues import card_sale
    d = card_sale("serial", amount_minor=1250)
    d.ecr, d.pt          # the bytes each side sent

``python -m simulator.zvt_dialogues --out sessions/payment`` rewrites the bundled sample captures: for each
dialogue ``<name>.<framing>.bin`` (the till's side, decode with ``--direction to_device``) and
``<name>.<framing>.from_device.bin`` (the terminal's side). The card number in them is a well-known test PAN.
"""

from __future__ import annotations

from simulator.captures import main as captures_main, write_captures


DLE, STX, ETX, ACK = 0x10, 0x02, 0x03, 0x06
#: a test card number (not a real card): decoders must emit it masked, 476173******0010
TEST_PAN = "4761739001010010"


def crc16_kermit(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def bcd(digits: str) -> bytes:
    if len(digits) % 2:
        raise ValueError(f"BCD needs an even number of digits: {digits!r}")
    return bytes.fromhex(digits)


def llvar(data: bytes, digits: int = 2) -> bytes:
    """A variable-length BMP value: its length as F0–F9 digit bytes (LLVAR: 2, LLLVAR: 3), then the data."""
    text = f"{len(data):0{digits}d}"
    if len(text) != digits:
        raise ValueError(f"{len(data)} bytes do not fit a {digits}-digit length")
    return bytes(0xF0 | int(c) for c in text) + data


def apdu(cls: int, instr: int, data: bytes = b"") -> bytes:
    if len(data) < 0xFF:
        return bytes([cls, instr, len(data)]) + data
    return bytes([cls, instr, 0xFF, len(data) & 0xFF, len(data) >> 8]) + data


def serial_frame(payload: bytes) -> bytes:
    crc = crc16_kermit(payload + bytes([ETX]))
    return bytes([DLE, STX]) + payload.replace(b"\x10", b"\x10\x10") + bytes([DLE, ETX, crc & 0xFF, crc >> 8])


def amount(amount_minor: int) -> bytes:
    return b"\x04" + bcd(f"{amount_minor:012d}")


def currency(numeric: str) -> bytes:
    return b"\x49" + bcd(f"{int(numeric):04d}")


ACK_APDU = apdu(0x80, 0x00)


class Dialogue:
    """The two byte streams of one conversation. On serial every frame is acknowledged by the link (a single
    ACK byte from the receiver); on TCP there is no link layer."""

    def __init__(self, framing: str):
        if framing not in ("serial", "tcp"):
            raise ValueError(f"framing must be serial or tcp, not {framing!r}")
        self.framing = framing
        self.ecr = bytearray()
        self.pt = bytearray()

    def _send(self, sender: bytearray, receiver: bytearray, payload: bytes) -> None:
        if self.framing == "serial":
            sender += serial_frame(payload)
            receiver.append(ACK)
        else:
            sender += payload

    def ecr_sends(self, payload: bytes) -> None:
        self._send(self.ecr, self.pt, payload)

    def pt_sends(self, payload: bytes, acknowledged: bool = True) -> None:
        """The terminal sends; the till answers `80 00 00` (every PT command but the final completion is
        acknowledged at the application level too)."""
        self._send(self.pt, self.ecr, payload)
        if acknowledged:
            self.ecr_sends(ACK_APDU)


def status_information(result: int, amount_minor: int, cur: str, trace: str, receipt: str, with_card: bool) -> bytes:
    data = b"\x27" + bytes([result]) + amount(amount_minor) + b"\x0b" + bcd(trace) + b"\x0c" + bcd("143005") \
        + b"\x0d" + bcd("1123") + b"\x29" + bcd("52500038") + currency(cur) + b"\x87" + bcd(receipt)
    if with_card:
        data += b"\x22" + llvar(bcd(TEST_PAN)) + b"\x8b" + llvar(b"VISA") + b"\x3b" + b"A1B2C3  "
    return apdu(0x04, 0x0F, data)


def card_sale(framing: str, amount_minor: int = 1250, cur: str = "978", approved: bool = True) -> Dialogue:
    """Authorisation: request, terminal ACK, intermediate statuses, status information, receipt lines,
    completion (or, declined: status information with the host's result code, then abort 06 1E)."""
    d = Dialogue(framing)
    d.ecr_sends(apdu(0x06, 0x01, amount(amount_minor) + currency(cur)))
    d.pt_sends(ACK_APDU, acknowledged=False)
    d.pt_sends(apdu(0x04, 0xFF, b"\x0a"))          # insert card
    d.pt_sends(apdu(0x04, 0xFF, b"\x0e"))          # please wait
    result = 0x00 if approved else 0x05            # 05: the host's "do not honour"
    d.pt_sends(status_information(result, amount_minor, cur, "000123", "0042", with_card=True))
    lines = [b"KARTENZAHLUNG", b"VISA", b"Karte ############0010", f"Betrag EUR {amount_minor // 100},{amount_minor % 100:02d}".encode(),
             b"Genehmigt" if approved else b"Abgelehnt"]
    for line in lines:
        d.pt_sends(apdu(0x06, 0xD1, b"\x00" + line))
    if approved:
        d.pt_sends(apdu(0x06, 0x0F), acknowledged=False)
    else:
        d.pt_sends(apdu(0x06, 0x1E, bytes([result])), acknowledged=False)
    d.ecr_sends(ACK_APDU)
    return d


DIALOGUES = {
    "zvt-card-sale": lambda framing: card_sale(framing),
    "zvt-card-declined": lambda framing: card_sale(framing, amount_minor=8990, approved=False),
}


def captures() -> dict[str, bytes]:
    """Every dialogue in both framings: the till's side and the terminal's side."""
    files = {}
    for name, make in DIALOGUES.items():
        for framing in ("serial", "tcp"):
            d = make(framing)
            files[f"{name}.{framing}.bin"] = bytes(d.ecr)
            files[f"{name}.{framing}.from_device.bin"] = bytes(d.pt)
    return files


def write_samples(out: str) -> list[str]:
    return write_captures(out, captures())


def main(argv: list[str] | None = None) -> int:
    return captures_main("zvt_dialogues", __doc__, "sessions/payment", captures, argv)


if __name__ == "__main__":
    raise SystemExit(main())

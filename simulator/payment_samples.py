"""Sample captures of the payment links other than ZVT, built independently of the decoders: an ISO 8583
authorisation exchange encoded by pyiso8583 (its ``default`` spec, the one our ``iso87-binary`` decodes) framed
with a 2-byte big-endian length, and a Transbank POS Integrado sale on an STX/ETX/LRC link.

``python -m simulator.payment_samples --out sessions/payment`` writes, per dialogue, ``<name>.bin`` (the till's or
terminal's requests: ``--direction to_device``) and ``<name>.from_device.bin`` (the answers). The card number is
a well-known test PAN. pyiso8583 is a dev extra, imported lazily.
"""

from __future__ import annotations

from simulator.captures import main as captures_main, write_captures
from simulator.zvt_dialogues import TEST_PAN

STX, ETX, ACK = 0x02, 0x03, 0x06


def lrc_frame(payload: bytes) -> bytes:
    """STX payload ETX LRC, the LRC being the XOR of the payload and ETX (Transbank, Concert)."""
    lrc = 0
    for b in payload + bytes([ETX]):
        lrc ^= b
    return bytes([STX]) + payload + bytes([ETX, lrc])


def transbank_sale(amount: int = 15990, ticket: str = "A00042") -> tuple[bytes, bytes]:
    """The till sends 0200 (sale); the terminal ACKs, answers 0210 with the card's last four digits; the till
    ACKs."""
    till = lrc_frame(f"0200|{amount}|{ticket}||1|1".encode())
    response = (f"0210|00|597029414300|70000001|{ticket}|AB1234|{amount}|||{TEST_PAN[-4:]}|000917|CR||"
                f"|VI|23112026|143005|0|0|")
    terminal = bytes([ACK]) + lrc_frame(response.encode())
    return till + bytes([ACK]), terminal


def iso8583_sale(amount: int = 1250) -> tuple[bytes, bytes]:
    """0200 financial request from the acquirer's side and the host's 0210 approval, each with a len2 prefix."""
    try:
        import iso8583
        import iso8583.specs
    except ImportError as exc:  # pragma: no cover - dev extra
        raise SystemExit("simulator.payment_samples needs pyiso8583 (the dev extra): pip install -e '.[dev]'") from exc
    common = {"2": TEST_PAN, "3": "000000", "4": f"{amount:012d}", "7": "1123143005", "11": "000123",
              "12": "143005", "13": "1123", "22": "051", "41": "TERM0001", "42": "MERCHANT0000001", "49": "978"}
    icc = "9F02060000000012509F2701805F2A0209784F07A0000000031010"
    request = {"t": "0200", **common, "14": "2812", "35": f"{TEST_PAN}=28121011438780000", "55": icc}
    response = {"t": "0210", **common, "37": "332712345678", "38": "AB1234", "39": "00"}

    def framed(doc: dict) -> bytes:
        raw, _ = iso8583.encode(doc, iso8583.specs.default)
        return len(raw).to_bytes(2, "big") + bytes(raw)

    return framed(request), framed(response)


SAMPLES = {
    "ecr-transbank-sale": transbank_sale,
    "iso8583-sale.len2": iso8583_sale,
}


def captures() -> dict[str, bytes]:
    files = {}
    for name, make in SAMPLES.items():
        files[f"{name}.bin"], files[f"{name}.from_device.bin"] = make()
    return files


def write_samples(out: str) -> list[str]:
    return write_captures(out, captures())


def main(argv: list[str] | None = None) -> int:
    return captures_main("payment_samples", __doc__, "sessions/payment", captures, argv)


if __name__ == "__main__":
    raise SystemExit(main())

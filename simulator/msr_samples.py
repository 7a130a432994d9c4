"""Sample capture of a keyboard-wedge magnetic stripe reader, built independently of the decoders: three swipes
as a wedge reader set to tracks 1 and 2 types them (each track followed by CR, ISO 7813 formats): a good card, a
card whose track 1 the reader could not read (it types ``%E?``), and a swipe cut short (track 2 without its end
sentinel). The card numbers are well-known test PANs; names and discretionary data are made up.

``python -m simulator.msr_samples --out sessions/msr`` writes ``wedge-swipes.bin`` (decode it with
``-p msr -o tracks=12``).
"""

from __future__ import annotations

from simulator.captures import main as captures_main, write_captures
from simulator.zvt_dialogues import TEST_PAN

SECOND_PAN = "5500005555555559"


def track1(pan: str, name: str, expiry: str, service: str, disc: str) -> str:
    return f"%B{pan}^{name}^{expiry}{service}{disc}?"


def track2(pan: str, expiry: str, service: str, disc: str) -> str:
    return f";{pan}={expiry}{service}{disc}?"


def wedge_swipes() -> bytes:
    swipes = [
        track1(TEST_PAN, "DOE/JOHN", "2812", "201", "0000000725000000") + "\r"
        + track2(TEST_PAN, "2812", "201", "0000072500000") + "\r",
        "%E?\r" + track2(SECOND_PAN, "2901", "101", "12345678") + "\r",
        track1(SECOND_PAN, "PUBLIC/Q", "2901", "101", "000000999") + "\r" + f";{SECOND_PAN}=2901" + "\r",
    ]
    return "".join(swipes).encode("ascii")


def captures() -> dict[str, bytes]:
    return {"wedge-swipes.bin": wedge_swipes()}


def write_samples(out: str) -> list[str]:
    return write_captures(out, captures())


def main(argv: list[str] | None = None) -> int:
    return captures_main("msr_samples", __doc__, "sessions/msr", captures, argv)


if __name__ == "__main__":
    raise SystemExit(main())

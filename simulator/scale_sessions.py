"""Sample scale captures: a till polling a scale while a customer's produce settles on the platter.

``python -m simulator.scale_sessions --out sessions/scale`` writes, per protocol, ``<name>.bin`` (the till's polls:
``--direction to_device``) and ``<name>.from_device.bin`` (the scale's answers):

* ``nci-produce``: NCI / Weigh-Tronix SCP-01, 1.25 lb of apples put on the platter (motion, then stable), a status
  poll, a zero, an unknown command answered with ``?``.
* ``toledo-produce``: Toledo 8217 in kg: motion status, then 0.735 kg, a net weight, at zero.
* ``cas-stream``: CAS continuous output (from_device only): unstable, stable, net, overload.
* ``magellan-basket``: Datalogic Magellan SCI, scanner and scale on one line: labels (UPC-A, EAN-13, UPC-E, GS1
  DataBar) between weight requests and S144 weights.
Formats: ``docs/protocols/scale.md``.
"""

from __future__ import annotations

from simulator.captures import main as captures_main, write_captures


CR, LF, ETX, STX = b"\r", b"\n", b"\x03", b"\x02"


def nci() -> tuple[bytes, bytes]:
    till, scale = [], []

    def ask(cmd: bytes, reply: bytes) -> None:
        till.append(cmd + CR)
        scale.append(reply)

    def weight(text: bytes, status: bytes) -> bytes:
        return LF + text + CR + LF + status + CR + ETX

    ask(b"W", weight(b"0000.00LB", b"20"))          # empty platter: at zero
    ask(b"W", weight(b"0000.87LB", b"10"))          # apples going on: motion
    ask(b"W", weight(b"0001.31LB", b"10"))
    ask(b"W", weight(b"0001.25LB", b"00"))          # settled
    ask(b"S", LF + b"00" + CR + ETX)
    ask(b"X", LF + b"?" + CR + ETX)                 # a typo: the scale answers "?"
    ask(b"Z", LF + b"20" + CR + ETX)
    return b"".join(till), b"".join(scale)


def toledo() -> tuple[bytes, bytes]:
    till = b"W" * 4 + b"Z"
    scale = (STX + b"?A" + CR                       # motion
             + STX + b"00.735" + CR                 # 0.735 kg
             + STX + b"00.512N" + CR                # net, after a tare on the scale
             + STX + b"?P" + CR                     # centre of zero (b4)
             + STX + b"?P" + CR)
    return till, scale


def cas() -> bytes:
    lines = [b"US,GS,+  0.412kg", b"US,GS,+  1.377kg", b"ST,GS,+  1.500kg", b"ST,GS,+  1.500kg",
             b"ST,NT,+  1.250kg", b"OL,GS,+ --.---kg", b"ST,GS,+  0.000kg"]
    return b"".join(line + CR + LF for line in lines)


def magellan() -> tuple[bytes, bytes]:
    till = b"S14\r" + b"S11\r" + b"S334\r" + b"S11\r" + b"S14\r"
    scale = (b"S08A036000291452\r"                  # UPC-A
             b"S08F4006381333931\r"                 # EAN-13
             b"S141\r"                              # bananas going on: unstable
             b"S1440234\r"                          # 2.34 lb
             b"S08E04252614\r"                      # UPC-E
             b"S08R0100614141999996\r"              # GS1 DataBar (loose produce)
             b"S143\r")                             # platter empty again
    return till, scale


def captures() -> dict[str, bytes]:
    files = {}
    files["nci-produce.bin"], files["nci-produce.from_device.bin"] = nci()
    files["toledo-produce.bin"], files["toledo-produce.from_device.bin"] = toledo()
    files["cas-stream.from_device.bin"] = cas()
    files["magellan-basket.bin"], files["magellan-basket.from_device.bin"] = magellan()
    return files


def write_samples(out: str) -> list[str]:
    return write_captures(out, captures())


def main(argv: list[str] | None = None) -> int:
    return captures_main("scale_sessions", __doc__, "sessions/scale", captures, argv)


if __name__ == "__main__":
    raise SystemExit(main())

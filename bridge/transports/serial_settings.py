"""Serial port settings from a URL query, as a table: each key, what it accepts, and pyserial's value for it.

Used by ``serial://`` (and pyserial's URL handlers) and by ``tap+serial://`` (applied to both ports). A bad value
is a ``TransportConfigError`` at construction, one line naming the device, the key and what is accepted.
"""

from __future__ import annotations

from bridge.transports._common import UrlCheck

BYTESIZES = {"5": 5, "6": 6, "7": 7, "8": 8}
PARITIES = {"N": "N", "E": "E", "O": "O", "M": "M", "S": "S",
            "NONE": "N", "EVEN": "E", "ODD": "O", "MARK": "M", "SPACE": "S"}
STOPBITS = {"1": 1, "1.5": 1.5, "2": 2}
BAUDRATE_MAX = 4_000_000  # the fastest USB-serial bridges; custom rates below this are passed to the OS as given
FLOW_CONTROL = ("rtscts", "xonxoff", "dsrdtr")

#: key -> what the error message says is accepted (the order of the docs table).
SETTINGS_KEYS = {
    "baudrate": f"an integer from 50 to {BAUDRATE_MAX} (e.g. 9600)",
    "bytesize": "one of 5, 6, 7, 8",
    "parity": "one of N, E, O, M, S (or none, even, odd, mark, space)",
    "stopbits": "one of 1, 1.5, 2",
    "rtscts": "true or false",
    "xonxoff": "true or false",
    "dsrdtr": "true or false",
}

#: pyserial's defaults, which the bridge keeps: 9600 8N1, no flow control.
DEFAULTS = {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1,
            "rtscts": False, "xonxoff": False, "dsrdtr": False}


def parse_settings(check: UrlCheck, query: dict[str, str]) -> dict:
    """pyserial keyword arguments for the settings keys present in ``query`` (other keys are left alone)."""
    out = dict(DEFAULTS)
    for key, value in query.items():
        if key not in SETTINGS_KEYS:
            continue
        if key == "baudrate":
            out[key] = int(check.number(key, value, 50, BAUDRATE_MAX, int))
        elif key in FLOW_CONTROL:
            out[key] = check.boolean(key, value)
        else:
            table = {"bytesize": BYTESIZES, "parity": PARITIES, "stopbits": STOPBITS}[key]
            picked = table.get(value.strip().upper())
            if picked is None:
                raise check.error(f"{key}={value!r} is not accepted; use {SETTINGS_KEYS[key]}")
            out[key] = picked
    return out

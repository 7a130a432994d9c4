"""The bundled sample captures (``sessions/**/*.bin``) as devices of a recording: which protocol and options each
file's name says (as the Makefile's ``run`` target decodes them). Used by tests and benchmarks to build small
recordings from real captures."""

from __future__ import annotations

import os
from dataclasses import dataclass

# (folder, name prefix) -> (protocol, options); the first match wins
RULES: list[tuple[str, str, str, dict]] = [
    ("escpos", "", "escpos", {}),
    ("payment", "zvt-", "zvt-serial", {}),  # .tcp files: see protocol_of
    ("payment", "iso8583-", "iso8583", {"spec": "iso87-binary", "framing": "len2"}),
    ("payment", "ecr-transbank", "ecr", {"preset": "transbank"}),
    ("scanner", "basket.crlf", "scanner", {"suffix": "crlf"}),
    ("scanner", "basket.hidpos", "scanner-hidpos", {}),
    ("scale", "nci-", "scale-nci", {}),
    ("scale", "magellan-", "magellan", {}),
    ("scale", "toledo-", "scale-toledo", {}),
    ("scale", "cas-", "scale-cas", {}),
    ("msr", "", "msr", {"tracks": "12"}),
    ("display", "basket.cd5220", "display-cd5220", {}),
    ("display", "basket.epson", "display-epson", {}),
]

FROM_DEVICE_SUFFIX = ".from_device.bin"


@dataclass
class SampleSession:
    name: str          # the capture's base name, e.g. "zvt-card-sale.serial"
    protocol: str
    options: dict
    to_device: str | None    # path of the till's side, when captured
    from_device: str | None  # path of the device's side, when captured


def protocol_of(folder: str, base: str) -> tuple[str, dict] | None:
    for rule_folder, prefix, protocol, options in RULES:
        if folder == rule_folder and base.startswith(prefix):
            if protocol == "zvt-serial" and ".tcp" in base:
                return "zvt-tcp", dict(options)
            return protocol, dict(options)
    return None


def bundled_sessions(root: str) -> list[SampleSession]:
    out: dict[str, SampleSession] = {}
    for folder in sorted(os.listdir(root)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            continue
        for fname in sorted(os.listdir(path)):
            if not fname.endswith(".bin"):
                continue
            from_dev = fname.endswith(FROM_DEVICE_SUFFIX)
            base = fname[: -len(FROM_DEVICE_SUFFIX)] if from_dev else fname[:-4]
            found = protocol_of(folder, base)
            if found is None:
                continue
            key = f"{folder}/{base}"
            s = out.setdefault(key, SampleSession(base, found[0], found[1], None, None))
            if from_dev:
                s.from_device = os.path.join(path, fname)
            else:
                s.to_device = os.path.join(path, fname)
    return list(out.values())

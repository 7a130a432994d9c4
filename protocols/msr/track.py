"""Magnetic stripe track rules shared by the MSR decoder (``docs/protocols/msr.md``) and the scanner decoder's
track-shaped labels (``docs/protocols/scanner.md`` section 5): where a track's PAN is, and the ``msr.swipe`` data
both build. The C twin is ``native/tw_msr.c``."""

from __future__ import annotations

from protocols.card import mask_pan

#: digits a PAN may have (ISO/IEC 7812, ISO 7813)
PAN_MAX = 19


def track_pan(track: bytes, number: int) -> bytes | None:
    """The PAN of a track that starts with its start sentinel: track 1 ``%B`` + 1..19 digits + ``^``, track 2
    ``;`` + 1..19 digits + ``=``; None when it has none."""
    if number == 1:
        if track[:2] != b"%B":
            return None
        start, stop = 2, 0x5E
    else:
        if track[:1] != b";":
            return None
        start, stop = 1, 0x3D
    k, n = start, len(track)
    while k < n and k - start < PAN_MAX and 0x30 <= track[k] <= 0x39:
        k += 1
    if k == start or k >= n or track[k] != stop:
        return None
    return bytes(track[start:k])


def swipe_event(pan: bytes | None, tracks: list[int]) -> dict:
    """``msr.swipe {pan: masked (only with a PAN), tracks}``: never the name, expiry or discretionary data."""
    data: dict = {}
    if pan:
        data["pan"] = mask_pan(pan.decode("ascii"))
    data["tracks"] = list(tracks)
    return {"type": "msr.swipe", "data": data}

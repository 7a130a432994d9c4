"""The checksums of payment-terminal links, the Python twins of ``native/tw_crc.h``: every function takes the
running value (the seed) and returns it updated over ``data``, so a stream can be checked as it arrives.

    CRC-16/KERMIT: poly 0x1021 reflected (0x8408), init 0, no final xor; check(b"123456789") = 0x2189 (ZVT serial)
    CRC-16/XMODEM: poly 0x1021, init 0, not reflected, no final xor;     check(b"123456789") = 0x31C3
    XOR LRC and 8-bit sum: the one-byte checks of STX/ETX ECR links.
"""

from __future__ import annotations


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def crc16_xmodem(data: bytes, crc: int = 0) -> int:
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def lrc_xor(data: bytes, lrc: int = 0) -> int:
    for b in data:
        lrc ^= b
    return lrc


def sum8(data: bytes, total: int = 0) -> int:
    return (total + sum(data)) & 0xFF

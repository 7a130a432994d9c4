"""Transports, one per URL scheme (docs/bridge/transports.md). ``open_transport(device, url)`` builds one."""

from __future__ import annotations

import importlib

from bridge.transports.base import Backoff, Transport, TransportConfigError, redact_url

# scheme -> (module, class). Modules load lazily: pyusb is imported only when a usb:// device is configured.
SCHEMES: dict[str, tuple[str, str]] = {
    # pyserial and its URL handlers (serial_for_url): a local port, a TCP serial server, RFC 2217, a loopback.
    "serial": ("bridge.transports.serial_port", "SerialTransport"),
    "socket": ("bridge.transports.serial_port", "SerialTransport"),
    "rfc2217": ("bridge.transports.serial_port", "SerialTransport"),
    "loop": ("bridge.transports.serial_port", "SerialTransport"),
    "usb": ("bridge.transports.usb", "UsbTransport"),
    "tcp-listen": ("bridge.transports.tcp", "TcpListenTransport"),
    "tap+tcp": ("bridge.transports.tap", "TcpTapTransport"),
    "tap+serial": ("bridge.transports.tap", "SerialTapTransport"),
    "replay": ("bridge.transports.replay", "ReplayTransport"),
}


def register(scheme: str, module: str, cls: str) -> None:
    SCHEMES[scheme] = (module, cls)


def open_transport(device: str, url: str, **options) -> Transport:
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise TransportConfigError(f"device {device!r}: transport {url!r} is not a URL (scheme://…); "
                                   f"known schemes: {', '.join(sorted(SCHEMES))}")
    entry = SCHEMES.get(scheme.lower())
    if entry is None:
        raise TransportConfigError(f"device {device!r}: unknown transport scheme {scheme!r}; "
                                   f"known schemes: {', '.join(sorted(SCHEMES))}")
    module, cls = entry
    return getattr(importlib.import_module(module), cls)(device, url, **options)


__all__ = ["Backoff", "SCHEMES", "Transport", "TransportConfigError", "open_transport", "redact_url", "register"]

"""Transport URLs are checked when the transport is built, before anything opens: a bad one is a
``TransportConfigError`` whose message is one line naming the device, the URL and what to write instead."""

from __future__ import annotations

import pytest

from bridge.transports import SCHEMES, TransportConfigError, open_transport

# (url, a phrase the message must contain)
BAD_URLS = [
    ("serial:///dev/ttyUSB0?baudrate=fast", "baudrate='fast' is not accepted; use an integer from 50 to 4000000"),
    ("serial:///dev/ttyUSB0?baudrate=0", "baudrate='0' is not accepted"),
    ("serial:///dev/ttyUSB0?bytesize=9", "bytesize='9' is not accepted; use one of 5, 6, 7, 8"),
    ("serial:///dev/ttyUSB0?parity=Q", "parity='Q' is not accepted; use one of N, E, O, M, S"),
    ("serial:///dev/ttyUSB0?stopbits=3", "stopbits='3' is not accepted; use one of 1, 1.5, 2"),
    ("serial:///dev/ttyUSB0?rtscts=maybe", "rtscts='maybe' is not a boolean"),
    ("serial:///dev/ttyUSB0?xonxoff=2", "xonxoff='2' is not a boolean"),
    ("serial:///dev/ttyUSB0?dsrdtr=", "dsrdtr='' is not a boolean"),
    ("serial:///dev/ttyUSB0?baud=9600", "unknown query parameter 'baud'; accepted: baudrate"),
    ("serial:///dev/ttyUSB0?parity=E&parity=O", "query parameter 'parity' is given twice"),
    ("serial://", "no serial port given"),
    ("socket://localhost", "is not HOST:PORT"),
    ("socket://127.0.0.1:99999", "port 99999 is out of range"),
    ("socket://127.0.0.1:7000?timeout=3", "unknown query parameter 'timeout'"),
    ("rfc2217://host:notaport", "is not HOST:PORT"),
    ("loop://?verbose=1", "unknown query parameter 'verbose'"),
    ("usb://04b8", "is not VID:PID"),
    ("usb://04b8:zz02", "product id 'zz02' is not a 16-bit hex number"),
    ("usb://104b8:0202", "vendor id '104b8' is not a 16-bit hex number"),
    ("usb://04b8:0202?interface=-1", "interface='-1' is not accepted"),
    ("usb://04b8:0202?in=0x01", "in='0x01' is not a bulk IN endpoint address"),
    ("usb://04b8:0202?out=0x81", "out='0x81' is not a bulk OUT endpoint address"),
    ("usb://04b8:0202?alt=1", "unknown query parameter 'alt'"),
    ("tcp-listen://0.0.0.0", "is not HOST:PORT"),
    ("tcp-listen://:9100", "is not HOST:PORT"),
    ("tcp-listen://0.0.0.0:65536", "port 65536 is out of range"),
    ("tcp-listen://0.0.0.0:9100/printer", "unexpected path '/printer'"),
    ("tcp-listen://0.0.0.0:9100?reply=status", "unknown query parameter 'reply'"),
    ("tap+tcp://0.0.0.0:9100?upstream=10.0.0.5:9100&half_close=0", "half_close='0' is not accepted"),
    ("tap+tcp://0.0.0.0:9100?upstream=10.0.0.5:9100&half_close=soon", "half_close='soon' is not accepted"),
    ("tap+tcp://0.0.0.0:9100", "add ?upstream=HOST:PORT"),
    ("tap+tcp://0.0.0.0:9100?upstream=printer", "upstream 'printer' is not HOST:PORT"),
    ("tap+tcp://0.0.0.0:9100?upstream=10.0.0.5:0", "upstream port 0 is out of range"),
    ("tap+tcp://0.0.0.0:9100?upstream=10.0.0.5:9100&connect_timeout=0", "connect_timeout='0' is not accepted"),
    ("tap+tcp://0.0.0.0:9100?upstream=10.0.0.5:9100&upstrem=x", "unknown query parameter 'upstrem'"),
    ("tap+serial:///dev/ttyS0", "add ?device=PORT"),
    ("tap+serial://?device=/dev/ttyUSB0", "the till's side is missing"),
    ("tap+serial:///dev/ttyS0?device=/dev/ttyUSB0&parity=X", "parity='X' is not accepted"),
    ("tap+serial:///dev/ttyS0?device=spy:///dev/ttyUSB0", "scheme 'spy' is not supported"),
    ("ftp://printer", "unknown transport scheme 'ftp'"),
    ("/dev/ttyUSB0", "is not a URL"),
]


@pytest.mark.parametrize("url, phrase", BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_a_bad_url_is_one_line_naming_the_device_and_what_to_fix(url, phrase):
    with pytest.raises(TransportConfigError) as info:
        open_transport("till-printer", url)
    message = str(info.value)
    assert "\n" not in message
    assert "'till-printer'" in message
    assert phrase in message


GOOD_URLS = [
    ("serial:///dev/ttyUSB0?baudrate=9600&bytesize=7&parity=E&stopbits=1", "SerialTransport"),
    ("serial:///dev/ttyUSB0?parity=even&stopbits=1.5&rtscts=true&xonxoff=off&dsrdtr=0", "SerialTransport"),
    ("serial://COM3?baudrate=115200", "SerialTransport"),
    ("socket://192.168.1.20:4001?logging=debug", "SerialTransport"),
    ("rfc2217://192.168.1.20:2217?poll_modem&baudrate=19200", "SerialTransport"),
    ("loop://", "SerialTransport"),
    ("usb://04b8:0202", "UsbTransport"),
    ("usb://0x04B8:0x0E15?interface=1&in=0x82&out=0x02&serial=ABC123", "UsbTransport"),
    ("tcp-listen://0.0.0.0:9100", "TcpListenTransport"),
    ("tcp-listen://[::1]:20007", "TcpListenTransport"),
    ("tap+tcp://0.0.0.0:9100?upstream=192.168.1.50:9100", "TcpTapTransport"),
    ("tap+tcp://0.0.0.0:20007?upstream=[fd00::7]:20007&connect_timeout=1.5", "TcpTapTransport"),
    ("tap+tcp://0.0.0.0:9100?upstream=192.168.1.50:9100&half_close=30", "TcpTapTransport"),
    ("tcp-listen://0.0.0.0:9100", "TcpListenTransport"),
    ("tap+serial:///dev/ttyS0?device=/dev/ttyUSB0&baudrate=9600&parity=E&bytesize=7", "SerialTapTransport"),
    ("tap+serial:///dev/ttyS0?device=socket://10.0.0.9:4001", "SerialTapTransport"),
]


@pytest.mark.parametrize("url, cls", GOOD_URLS, ids=[u for u, _ in GOOD_URLS])
def test_good_urls_build_their_transport_without_touching_a_device(url, cls):
    transport = open_transport("dev", url)
    assert type(transport).__name__ == cls
    assert transport.describe() == url
    assert SCHEMES[url.partition("://")[0]][1] == cls


def test_serial_settings_reach_pyserial():
    transport = open_transport("scale", "serial:///dev/ttyUSB0?baudrate=9600&bytesize=7&parity=E&stopbits=2"
                                        "&rtscts=yes")
    assert transport.endpoint.settings == {"baudrate": 9600, "bytesize": 7, "parity": "E", "stopbits": 2,
                                           "rtscts": True, "xonxoff": False, "dsrdtr": False}
    assert transport.endpoint.target == "/dev/ttyUSB0"


def test_pyserial_handler_keys_pass_through_and_ours_do_not():
    transport = open_transport("scale", "socket://10.0.0.9:4001?logging=debug&baudrate=4800")
    assert transport.endpoint.target == "socket://10.0.0.9:4001?logging=debug"
    assert transport.endpoint.settings["baudrate"] == 4800


def test_tap_serial_settings_apply_to_both_sides():
    transport = open_transport("scale", "tap+serial:///dev/ttyS0?device=/dev/ttyUSB0&baudrate=2400&parity=O")
    assert transport.till.target == "/dev/ttyS0" and transport.dev.target == "/dev/ttyUSB0"
    assert transport.till.settings == transport.dev.settings
    assert transport.dev.settings["baudrate"] == 2400 and transport.dev.settings["parity"] == "O"


def test_an_unknown_transport_option_is_a_config_error():
    with pytest.raises(TransportConfigError, match="unknown transport option 'backlog'"):
        open_transport("printer", "tcp-listen://0.0.0.0:9100", backlog=5)

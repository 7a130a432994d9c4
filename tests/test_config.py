"""The bridge's TOML config (bridge/config.py, docs/bridge/config.md): every mistake is one line naming the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[bridge]
source_prefix = "pos://store-1/till-3/"
outbox = "state/outbox.sqlite"
outbox_max_mb = 64

[feed]
listen = "127.0.0.1:8765"

[[devices]]
name = "printer"
protocol = "escpos"
transport = "tap+tcp://127.0.0.1:9100?upstream=192.0.2.10:9100"
options = { profile = "tm-t88" }

[[devices]]
name = "scanner"
protocol = "scanner"
transport = "serial:///dev/ttyUSB0?baudrate=9600"
options = { suffix = "crlf" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_config(tmp_path):
    cfg = load(write(tmp_path, GOOD))
    assert cfg.source_prefix == "pos://store-1/till-3/"
    assert (cfg.site, cfg.till) == ("store-1", "till-3")
    assert cfg.outbox == tmp_path / "state/outbox.sqlite"  # relative to the config file
    assert cfg.outbox_max_bytes == 64 * 1024 * 1024
    assert [d.name for d in cfg.devices] == ["printer", "scanner"]
    assert cfg.devices[0].options == {"profile": "tm-t88"}
    assert cfg.src("printer") == "pos://store-1/till-3/printer"
    assert cfg.bridge_src == "pos://store-1/till-3/bridge"
    assert (cfg.feed.host, cfg.feed.port, cfg.feed.token) == ("127.0.0.1", 8765, None)


def test_the_bundled_examples_load():
    for name in ("demo.toml", "hardware.toml"):
        cfg = load(ROOT / "examples" / name)
        assert cfg.devices


BAD = [
    # (what to change in GOOD, the key the message must name, a phrase it must contain)
    (("source_prefix = \"pos://store-1/till-3/\"", "source_prefix = \"store-1\""), "bridge.source_prefix",
     "URI prefix"),
    (("outbox_max_mb = 64", "outbox_max_mb = \"big\""), "bridge.outbox_max_mb", "must be an integer or a number"),
    (("outbox_max_mb = 64", "outbox_max_mb = 0"), "bridge.outbox_max_mb", "between 1 and"),
    (("outbox_max_mb = 64", "retention_hours = inf"), "bridge.retention_hours", "finite"),
    (("outbox_max_mb = 64", "retention_hours = 99999999"), "bridge.retention_hours", "between 0 and 87600"),
    (("outbox_max_mb = 64", "pending_max_mb = nan"), "bridge.pending_max_mb", "finite"),
    (("outbox_max_mb = 64", "outbx = 64"), "bridge", "unknown key 'outbx'"),
    (("listen = \"127.0.0.1:8765\"", "listen = \"8765\""), "[feed] listen", "HOST:PORT"),
    (("listen = \"127.0.0.1:8765\"", "listen = \"0.0.0.0:8765\""), "[feed] listen", "bearer token"),
    (("listen = \"127.0.0.1:8765\"", "token_env = \"NO_SUCH_VARIABLE_SET\""), "[feed] token_env",
     "is not set"),
    (("name = \"scanner\"", "name = \"printer\""), "devices[1].name", "used twice"),
    (("name = \"scanner\"", "name = \"Scanner 1\""), "devices[1].name", "lowercase"),
    (("protocol = \"scanner\"", "protocol = \"scaner\""), "devices[1].protocol", "unknown protocol 'scaner'"),
    (("suffix = \"crlf\"", "suffix = \"semicolon\""), "devices[1].options", "suffix"),
    (("transport = \"serial:///dev/ttyUSB0?baudrate=9600\"", "transport = \"/dev/ttyUSB0\""),
     "devices[1].transport", "not a URL"),
    (("transport = \"serial:///dev/ttyUSB0?baudrate=9600\"", "transport = \"seriel:///dev/ttyUSB0\""),
     "devices[1].transport", "unknown transport scheme 'seriel'"),
    (("transport = \"serial:///dev/ttyUSB0?baudrate=9600\"", "transport = \"serial:///dev/ttyUSB0?baudrate=fast\""),
     "devices[1].transport", "baudrate"),
    (("transport = \"serial:///dev/ttyUSB0?baudrate=9600\"", ""), "devices[1].transport", "is required"),
    (("transport = \"serial:///dev/ttyUSB0?baudrate=9600\"", "transport = \"tcp-listen://[::1:9100\""),
     "devices[1].transport", "IPv6"),
]


@pytest.mark.parametrize("change,key,phrase", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_each_mistake_is_one_line_naming_the_key(tmp_path, change, key, phrase):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}")
    assert phrase in message


def test_not_toml_and_missing_file_and_no_devices(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[bridge\n"))
    with pytest.raises(ConfigError, match=r"no \[\[devices\]\] configured"):
        load(write(tmp_path, "[bridge]\nsource_prefix = 'pos://a/b/'\n"))


def test_a_token_from_the_environment_allows_another_address(tmp_path, monkeypatch):
    monkeypatch.setenv("TILLWIRE_FEED_TOKEN", "s3cret-token-0123456789")
    cfg = load(write(tmp_path, GOOD.replace('"127.0.0.1:8765"', '"0.0.0.0:8765"\ntoken_env = "TILLWIRE_FEED_TOKEN"')))
    assert cfg.feed.token == "s3cret-token-0123456789"
    assert cfg.feed.token_source == "$TILLWIRE_FEED_TOKEN"


def test_cli_run_prints_the_one_line_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("protocol = \"scanner\"", "protocol = \"scaner\""))
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "devices[1].protocol" in err and "Traceback" not in err

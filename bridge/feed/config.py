"""The ``[feed]`` section of the configuration (docs/bridge/feed.md §5), checked into one ``FeedSettings``.

``bridge/config.py`` hands the section (a dict from TOML) and the environment to ``feed_settings``; every mistake is
one ``FeedConfigError`` line that names the key and says what to do.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_LISTEN = "127.0.0.1:8765"
DEFAULT_TOKEN_ENV = "TILLWIRE_FEED_TOKEN"
KEYS = ("enabled", "listen", "token", "token_env")


class FeedError(Exception):
    """The feed cannot start or serve; the message is one line and says what to do."""


class FeedConfigError(FeedError):
    """A ``[feed]`` setting (or a ``FeedServer`` argument) is wrong."""


@dataclass(frozen=True)
class FeedSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    token_source: str | None = None  # where the token came from, for the start-up line: "[feed] token", "$VAR"

    def __repr__(self) -> str:  # never print the token itself
        token = "<set>" if self.token else None
        return (f"FeedSettings(enabled={self.enabled}, host={self.host!r}, port={self.port}, token={token}, "
                f"token_source={self.token_source!r})")


def is_loopback(host: str) -> bool:
    """``localhost`` and every address in 127.0.0.0/8 or ::1 are loopback; names other than localhost are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8765"``, ``"[::1]:8765"``, ``"0.0.0.0:0"`` → ``(host, port)``; ``ValueError`` with one line."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"[feed] listen must be \"HOST:PORT\" such as \"{DEFAULT_LISTEN}\", not {text!r}")
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"[feed] listen = {text!r}: write an IPv6 address in brackets, e.g. \"[::1]:8765\"")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"[feed] listen must be \"HOST:PORT\" such as \"{DEFAULT_LISTEN}\", not {text!r}")
    return host, int(port)


def feed_settings(section: Mapping | None, environ: Mapping[str, str] | None = None) -> FeedSettings:
    """Check the ``[feed]`` table; ``environ`` defaults to ``os.environ`` (where ``token_env`` is looked up)."""
    section = dict(section or {})
    environ = os.environ if environ is None else environ
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise FeedConfigError(f"[feed] has unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FeedConfigError(f"[feed] enabled must be true or false, not {enabled!r}")
    try:
        host, port = parse_listen(section.get("listen", DEFAULT_LISTEN))
    except ValueError as exc:
        raise FeedConfigError(str(exc)) from None
    token, source = None, None
    if "token" in section and "token_env" in section:
        raise FeedConfigError("[feed] has both token and token_env; keep one (token_env keeps the secret out of "
                              "the file)")
    if "token" in section:
        token, source = section["token"], "[feed] token"
        if not isinstance(token, str) or not token.strip():
            raise FeedConfigError("[feed] token must be a non-empty string")
    elif "token_env" in section:
        name = section["token_env"]
        if not isinstance(name, str) or not name.strip():
            raise FeedConfigError("[feed] token_env must name an environment variable, e.g. \"TILLWIRE_FEED_TOKEN\"")
        token, source = environ.get(name), f"${name}"
        if not token or not token.strip():
            raise FeedConfigError(f"[feed] token_env = {name!r} but ${name} is not set (or empty); export it "
                                  f"before starting tillwire")
    if token is not None:
        token = token.strip()
    if enabled:
        check_exposure(host, token)
    return FeedSettings(enabled, host, port, token, source)


def check_exposure(host: str, token: str | None) -> None:
    """The one rule: listening beyond loopback needs a bearer token."""
    if not is_loopback(host) and not token:
        raise FeedConfigError(f"[feed] listen on {host!r} is not a loopback address: set [feed] token_env (or "
                              f"token) so that clients must send a bearer token, or listen on 127.0.0.1")

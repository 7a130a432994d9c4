"""The ``[feed]`` configuration section (docs/bridge/feed.md §5): what is accepted, and one line for each mistake."""

from __future__ import annotations

import pytest

from bridge.feed import FeedConfigError, FeedSettings, feed_settings, is_loopback, parse_listen


def test_defaults_are_loopback_without_a_token():
    assert feed_settings({}, environ={}) == FeedSettings(True, "127.0.0.1", 8765, None, None)
    assert feed_settings(None, environ={}) == FeedSettings(True, "127.0.0.1", 8765, None, None)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)),
    ("localhost:9000", ("localhost", 9000)),
    ("[::1]:8765", ("::1", 8765)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    (" 10.1.2.3:80 ", ("10.1.2.3", 80)),
])
def test_listen_forms(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8765", "127.0.0.1", "127.0.0.1:", ":8765", "host:port", "127.0.0.1:70000",
                                  "::1:8765", "", 8765])
def test_bad_listen_is_one_line_naming_the_key(text):
    with pytest.raises(FeedConfigError, match=r"\[feed\] listen") as info:
        feed_settings({"listen": text}, environ={})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("till-3.local", False),
])
def test_what_counts_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_a_non_loopback_listen_needs_a_token():
    with pytest.raises(FeedConfigError, match="not a loopback address.*token_env") as info:
        feed_settings({"listen": "0.0.0.0:8765"}, environ={})
    assert "\n" not in str(info.value)


def test_token_from_the_environment_says_where_it_came_from():
    settings = feed_settings({"listen": "0.0.0.0:8765", "token_env": "TILLWIRE_FEED_TOKEN"},
                             environ={"TILLWIRE_FEED_TOKEN": "  s3cret\n"})
    assert (settings.host, settings.token, settings.token_source) == ("0.0.0.0", "s3cret", "$TILLWIRE_FEED_TOKEN")
    assert "s3cret" not in repr(settings)


def test_token_in_the_file():
    settings = feed_settings({"listen": "192.168.1.20:8765", "token": "abc"}, environ={})
    assert (settings.token, settings.token_source) == ("abc", "[feed] token")


def test_a_token_on_loopback_is_kept_and_required():
    assert feed_settings({"token": "abc"}, environ={}).token == "abc"


@pytest.mark.parametrize("section, environ, message", [
    ({"token_env": "FEED_TOKEN"}, {}, r"\$FEED_TOKEN is not set"),
    ({"token_env": "FEED_TOKEN"}, {"FEED_TOKEN": "   "}, r"\$FEED_TOKEN is not set \(or empty\)"),
    ({"token_env": ""}, {}, "token_env must name an environment variable"),
    ({"token": ""}, {}, "token must be a non-empty string"),
    ({"token": 1234}, {}, "token must be a non-empty string"),
    ({"token": "a", "token_env": "B"}, {"B": "b"}, "both token and token_env"),
    ({"enabled": "yes"}, {}, "enabled must be true or false"),
    ({"port": 8765}, {}, "unknown key 'port'; known keys: enabled, listen, token, token_env"),
])
def test_mistakes_are_one_line(section, environ, message):
    with pytest.raises(FeedConfigError, match=message) as info:
        feed_settings(section, environ=environ)
    assert "\n" not in str(info.value)


def test_a_disabled_feed_is_not_checked_for_exposure():
    assert feed_settings({"enabled": False, "listen": "0.0.0.0:8765"}, environ={}).enabled is False

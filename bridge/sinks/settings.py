"""``[[sinks]]`` and ``[delivery]`` in the config file: the keys every sink has, secrets, TLS (docs/bridge/sinks.md §4).

Each sink kind parses its own keys in its module (``parse_options``); this module holds what they share:

- ``Secret``: a credential read from a file (``<key>_file``) or the environment (``<key>_env``) at start-up.
  Its ``repr``/``str`` say only where it came from. A credential written into the config file itself is refused.
- ``tls_context``: an ``ssl.SSLContext`` built (and so checked) at start-up from ``tls_ca_file``,
  ``tls_cert_file``, ``tls_key_file``; verification is on unless ``tls_verify = false``.
- ``url_without_credentials``: URLs must not carry ``user:password@``.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from bridge.sinks.base import CLASSES, SinkContext
from bridge.sinks.classes import DeliveryClasses, TypeMatcher, valid_pattern

SINK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Table(Protocol):
    """What ``bridge.config._Table`` offers a sink's parser (one TOML table, read key by key)."""

    data: dict

    def fail(self, message: str, key: str | None = None): ...
    def get(self, key: str, kind, default: Any = None, required: bool = False) -> Any: ...
    def number(self, key: str, default: float | None, minimum: float, maximum: float | None = None): ...


class Secret:
    """A credential. Only ``reveal()`` gives the value; every other view names its origin only."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str):
        self._value = value
        self.origin = origin

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<secret from {self.origin}>"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.origin)


def read_secret(t: Table, key: str, base: Path, env: Mapping[str, str], *, required: bool = False) -> Secret | None:
    """``<key>_file = "path"`` or ``<key>_env = "NAME"`` (one of them); ``<key> = "..."`` itself is refused."""
    if key in t.data:
        t.fail(f"a secret never goes into the config file; put it in a file ({key}_file = \"...\") or an "
               f"environment variable ({key}_env = \"...\")", key)
    path = t.get(f"{key}_file", str)
    var = t.get(f"{key}_env", str)
    if path is not None and var is not None:
        t.fail(f"give {key}_file or {key}_env, not both", f"{key}_file")
    if path is not None:
        file = Path(os.path.normpath(base / path))
        try:
            value = file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            t.fail(f"no such file {file}", f"{key}_file")
        except UnicodeDecodeError:
            t.fail(f"{file} is not UTF-8 text", f"{key}_file")
        except OSError as exc:
            t.fail(f"cannot read {file}: {exc.strerror or type(exc).__name__}", f"{key}_file")
        if not value:
            t.fail(f"{file} is empty", f"{key}_file")
        _one_line(t, value, f"{key}_file", str(file))
        return Secret(value, f"file {file}")
    if var is not None:
        value = env.get(var, "")
        if not value:
            t.fail(f"environment variable {var} is not set (or empty)", f"{key}_env")
        _one_line(t, value, f"{key}_env", f"environment variable {var}")
        return Secret(value, f"environment variable {var}")
    if required:
        t.fail(f"is required: give {key}_file or {key}_env", f"{key}_file")
    return None


def _one_line(t: Table, value: str, key: str, where: str) -> None:
    """A secret goes into headers and handshakes: one line of printable characters (a second line in a token
    file would otherwise end up, escaped, in an HTTP library's error message)."""
    if any(not c.isprintable() for c in value):
        t.fail(f"{where} holds a line break or another control character inside the secret; it must be one "
               f"line (a trailing newline is fine)", key)


def readable_file(t: Table, key: str, base: Path) -> Path | None:
    """A path key whose file must exist and be readable now (creds files, TLS files)."""
    value = t.get(key, str)
    if value is None:
        return None
    file = Path(os.path.normpath(base / value))
    try:
        with open(file, "rb") as fh:
            fh.read(1)
    except FileNotFoundError:
        t.fail(f"no such file {file}", key)
    except IsADirectoryError:
        t.fail(f"{file} is a directory, not a file", key)
    except OSError as exc:
        t.fail(f"cannot read {file}: {exc.strerror or type(exc).__name__}", key)
    return file


@dataclass(frozen=True)
class TlsFiles:
    verify: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: Secret | None = field(default=None, repr=False)


def tls_files(t: Table, base: Path, env: Mapping[str, str]) -> TlsFiles:
    verify = t.get("tls_verify", bool, True)
    ca = readable_file(t, "tls_ca_file", base)
    cert = readable_file(t, "tls_cert_file", base)
    key = readable_file(t, "tls_key_file", base)
    password = read_secret(t, "tls_key_password", base, env)
    if key is not None and cert is None:
        t.fail("needs tls_cert_file too", "tls_key_file")
    files = TlsFiles(verify, ca, cert, key, password)
    tls_context(files, t)  # build it once now: a bad file fails at start-up, not at the first publish
    return files


def tls_context(files: TlsFiles, t: Table | None = None) -> ssl.SSLContext:
    """A client context: system CAs (or ``ca_file``), hostname checks, TLS ≥ 1.2; off only with ``verify = false``."""
    try:
        ctx = ssl.create_default_context(cafile=str(files.ca_file) if files.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if not files.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if files.cert_file is not None:
            ctx.load_cert_chain(str(files.cert_file), str(files.key_file) if files.key_file else None,
                                password=files.key_password.reveal() if files.key_password else None)
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
        if t is not None:
            t.fail(f"the TLS files cannot be used ({reason})", "tls_ca_file" if files.ca_file else "tls_cert_file")
        raise
    return ctx


def url_without_credentials(t: Table, key: str, schemes: tuple[str, ...]) -> str:
    url = t.get(key, str, required=True)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        t.fail(f"is not a valid URL: {_safe_url(url)!r}", key)
    if parts.scheme not in schemes:
        t.fail(f"must start with {' or '.join(s + '://' for s in schemes)}, not {_safe_url(url)!r}", key)
    if parts.username is not None or parts.password is not None:
        t.fail("must not carry user:password@; give the credentials as *_file or *_env keys", key)
    if not parts.hostname:
        t.fail(f"has no host: {_safe_url(url).split('?')[0]!r}", key)
    del port
    return url


def _safe_url(url: str) -> str:
    """A URL for an error message: anything that looks like user:password@ cut out."""
    return re.sub(r"//[^/@]*@", "//***@", url)


@dataclass(frozen=True)
class SinkSettings:
    """The keys every ``[[sinks]]`` entry has; ``options`` holds the kind's own (its module's dataclass)."""

    name: str
    kind: str
    classes: tuple[str, ...]            # which delivery classes this sink takes
    types: tuple[str, ...] | None       # only these types (patterns), or every type
    max_batch: int                      # events per send
    batch_max_events: int               # a held batch-class backlog goes out at this many events...
    batch_max_age_s: float              # ...or when its oldest event is this old
    backoff_base_s: float
    backoff_cap_s: float
    connect_timeout_s: float
    options: Any = None
    _matcher: TypeMatcher | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self):
        if self.types is not None:
            object.__setattr__(self, "_matcher", TypeMatcher(self.types))

    def wants(self, type_: str, cls: str) -> bool:
        return cls in self.classes and (self._matcher is None or self._matcher(type_))


def parse_delivery(t: Table) -> DeliveryClasses:
    """``[delivery] realtime = [...]`` and ``batch = [...]``: patterns that override the default table."""
    overrides: dict[str, str] = {}
    for cls in CLASSES:
        patterns = t.get(cls, list, [])
        for p in patterns:
            if not isinstance(p, str) or not valid_pattern(p):
                t.fail(f"{p!r} is not an event type or a pattern like 'printer.*'", cls)
            if p in overrides and overrides[p] != cls:
                t.fail(f"{p!r} is in both realtime and batch", cls)
            overrides[p] = cls
    return DeliveryClasses(overrides)


def parse_sink(t: Table, base: Path, env: Mapping[str, str], *, options: bool = True) -> SinkSettings:
    """One ``[[sinks]]`` table. ``options=False`` reads only the common keys and leaves the kind's own (URLs,
    credentials, TLS files) unread and unchecked: for ``tillwire outbox``, which needs names and kinds only and
    must work in a shell without the bridge's secrets."""
    from bridge.sinks import KINDS, sink_class

    name = t.get("name", str, required=True)
    if not SINK_NAME.match(name):
        t.fail(f"must be lowercase letters, digits, '.', '_' or '-' (up to 64), not {name!r}", "name")
    kind = t.get("kind", str, required=True)
    if kind not in KINDS:
        t.fail(f"unknown sink kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}", "kind")
    classes = tuple(t.get("classes", list, list(CLASSES)))
    if not classes or any(c not in CLASSES for c in classes):
        t.fail(f"must be a non-empty list of {', '.join(map(repr, CLASSES))}", "classes")
    types = t.get("types", list, None)
    if types is not None:
        if not types or any(not isinstance(p, str) or not valid_pattern(p) for p in types):
            t.fail("must be a non-empty list of event types or patterns like 'payment.*'", "types")
        types = tuple(types)
    if not options:
        t.read.update(t.data)
        cls = None
    else:
        try:
            cls = sink_class(kind)
        except ImportError as exc:
            t.fail(f"needs a module that is not installed ({exc.name}); run `make run` or `pip install -e .`",
                   "kind")
    return SinkSettings(
        name=name, kind=kind, classes=classes, types=types,
        max_batch=int(t.number("max_batch", cls.default_max_batch if cls else 256, 1, 10_000)),
        batch_max_events=int(t.number("batch_max_events", 500, 1, 1_000_000)),
        batch_max_age_s=float(t.number("batch_max_age_s", 60, 0, 86_400)),
        backoff_base_s=float(t.number("backoff_base_s", 0.5, 0.001, 3600)),
        backoff_cap_s=float(t.number("backoff_cap_s", 60, 0.001, 86_400)),
        connect_timeout_s=float(t.number("connect_timeout_s", 5, 0.1, 600)),
        options=cls.parse_options(t, base, env) if cls else None,
    )


def secrets_of(options: Any) -> tuple[str, ...]:
    """Every ``Secret`` value among a settings dataclass's fields (for masking in texts shown)."""
    out = []
    for value in getattr(options, "__dict__", {}).values():
        if isinstance(value, Secret):
            out.append(value.reveal())
        elif isinstance(value, TlsFiles) and value.key_password is not None:
            out.append(value.key_password.reveal())
    return tuple(v for v in out if v)


def context_for(site: str, till: str, source_prefix: str, options: Any) -> SinkContext:
    return SinkContext(site=site, till=till, source_prefix=source_prefix, secrets=secrets_of(options))

"""Watch definitions: what a watch is made of, and what is refused, wherever it comes from (the
CLI, the HTTP API, the watches file, a record on news.watches): ``validate_watch`` checks the
values, ``make_watch`` and ``load_watch_file`` make watches, ``check_watch`` checks a record.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agents.watch.plan import _compile_query
from streams.errors import WatchError
from streams.records import Watch, stable_id
from streams.text import normalize, tokens

__all__ = ["check_watch", "load_watch_file", "make_watch", "validate_options", "validate_watch",
           "MAX_NAME_CHARS", "MAX_WEBHOOK_CHARS", "MAX_RATE_LIMIT", "PRIORITIES",
           "WATCH_OPTIONS"]

MAX_NAME_CHARS = 200
MAX_ID_CHARS = 200
MAX_WEBHOOK_CHARS = 2048
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
MAX_RATE_LIMIT = 1_000_000
# C0 and C1 controls (NUL, tab, newline, escape...), line and paragraph separators, and lone
# surrogates (not encodable as UTF-8) have no place in a watch's name or query.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_HOST_FORBIDDEN = re.compile(r"[^a-z0-9_-]")


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _check_text(what: str, text: str) -> None:
    bad = _CONTROL.search(text)
    if bad is not None:
        raise WatchError(f"{what} contains control character U+{ord(bad.group()):04X} "
                         f"(at character {bad.start()})")


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise WatchError(f"watch name must be a string, not {type(name).__name__}")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise WatchError(f"watch name is {len(name)} characters; the limit is {MAX_NAME_CHARS}")
    _check_text("watch name", name)
    if not tokens(name):
        raise WatchError("a watch needs a name with at least one word")
    return name


def _check_query(query: object, plurals: bool) -> str:
    if not isinstance(query, str):
        raise WatchError(f"watch query must be a string, not {type(query).__name__}")
    query = query.strip()
    _check_text("watch query", query)
    # The length, the syntax and the limits of the query language; parsed as the registry
    # will compile it (``plurals``), so the registry finds it in the cache of parsed queries.
    _compile_query(query, plurals)
    return query


def _check_port(netloc: str) -> None:
    """The port as written: digits in 1..65535 (``urlsplit`` reads ``+80`` or ``[::1]x``
    differently across Python versions, and ``:0`` is no port to deliver to)."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        rest = hostport[hostport.find("]") + 1:]
        if rest and not rest.startswith(":"):
            raise WatchError(f"webhook URL: unexpected {_shown(rest, 20)} after the IPv6 address")
        port = rest[1:]
    else:
        port = hostport.partition(":")[2]
    if not port:
        return
    if not (port.isascii() and port.isdigit()):
        raise WatchError(f"webhook URL: port {_shown(port, 20)} is not a number")
    if not 1 <= int(port) <= 65535:
        raise WatchError(f"webhook URL: port {int(port)} is out of range 1-65535")


def _check_host(host: str, bracketed: bool) -> None:
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise WatchError(f"webhook URL: [{_shown(host, 60)[1:-1]}] is not an IPv6 address"
                             ) from None
        return
    name = host[:-1] if host.endswith(".") else host  # a fully qualified name's final dot
    if len(name) > MAX_HOST_CHARS:
        raise WatchError(f"webhook URL: the host is {len(name)} characters; the limit is "
                         f"{MAX_HOST_CHARS}")
    total = -1
    for label in name.split("."):
        if not label:
            raise WatchError(f"webhook URL: empty label in host {_shown(host)}")
        ace = label
        if not label.isascii():  # an internationalised name: its labels as DNS sees them
            try:
                ace = label.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise WatchError(f"webhook URL: host label {_shown(label, 30)} is not a valid "
                                 f"internationalised label ({exc})") from None
        if len(ace) > MAX_LABEL_CHARS:
            raise WatchError(f"webhook URL: a host label is {len(ace)} characters; the limit "
                             f"is {MAX_LABEL_CHARS}")
        bad = _HOST_FORBIDDEN.search(ace)
        if bad is not None:
            raise WatchError(f"webhook URL: character {bad.group()!r} is not allowed in a host "
                             "name")
        total += len(ace) + 1
    if total > MAX_HOST_CHARS:
        raise WatchError(f"webhook URL: the host is {total} characters in DNS form; the limit "
                         f"is {MAX_HOST_CHARS}")


def _check_webhook_url(url: object) -> None:
    """The syntax of a webhook URL. Whether its host may be a target (DNS, the SSRF guard) is
    ``agents.webhook.core.refusal_reason``: a separate, asynchronous step."""
    if not isinstance(url, str):
        raise WatchError(f"webhook URL must be a string, not {type(url).__name__}")
    if len(url) > MAX_WEBHOOK_CHARS:
        raise WatchError(f"webhook URL is {len(url)} characters; the limit is "
                         f"{MAX_WEBHOOK_CHARS}")
    _check_url_text(url)


@lru_cache(maxsize=4096)  # desks share hooks; only valid URLs are remembered (a raise is not)
def _check_url_text(url: str) -> None:
    bad = _URL_FORBIDDEN.search(url)
    if bad is not None:
        raise WatchError(f"webhook URL contains whitespace or control character "
                         f"U+{ord(bad.group()):04X} (at character {bad.start()})")
    if "\\" in url:  # read as "/" by browsers, as a character by urllib: never guess
        raise WatchError("webhook URL contains a backslash; write / or %5C")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL", a bracketed host that is no address
        raise WatchError(f"webhook URL {_shown(url)} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WatchError(f"webhook URL {_shown(url)} must start with http:// or https://")
    if not host:
        raise WatchError(f"webhook URL {_shown(url)} has no host")
    if parts.netloc.count("@") > 1:
        raise WatchError("webhook URL: write an @ in the user name or password as %40")
    _check_port(parts.netloc)
    try:
        parts.port  # noqa: B018 - raises ValueError on what _check_port let through
    except ValueError as exc:
        raise WatchError(f"webhook URL {_shown(url)} is malformed: {exc}") from None
    _check_host(host, bracketed="[" in parts.netloc.rpartition("@")[2])


def _check_rate_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise WatchError("rate limit must be a whole number of alerts per window, not "
                         f"{type(limit).__name__}")
    if limit == 0:
        raise WatchError("rate limit 0 is not allowed: omit the rate limit to use the default "
                         "(WIREWATCH_ALERT_RATE_LIMIT)")
    if not 1 <= limit <= MAX_RATE_LIMIT:
        shown = str(limit) if abs(limit) < 10**18 else f"a number of {limit.bit_length()} bits"
        raise WatchError(f"rate limit must be between 1 and {MAX_RATE_LIMIT:,} alerts per "
                         f"window, not {shown}")


PRIORITIES = ("routine", "urgent", "flash")  # lowest first
DIGESTS = ("hourly", "daily")
WEBHOOK_FORMATS = ("json", "slack", "teams")
MAX_SPIKE_HOURS = 24 * 7
MAX_SPIKE_DAYS = 90


def _one_of(what: str, allowed: tuple[str, ...], optional: bool) -> Callable[[object], None]:
    def check(value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or value not in allowed:
            shown = _shown(value) if isinstance(value, str) else type(value).__name__
            raise WatchError(f"{what} must be one of {', '.join(allowed)}"
                             f"{' (or null)' if optional else ''}, not {shown}")
    return check


def _whole(what: str, most: int) -> Callable[[object], None]:
    def check(value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise WatchError(f"{what} must be a whole number from 1 to {most} (or null)")
    return check


def _flag(what: str) -> Callable[[object], None]:
    def check(value: object) -> None:
        if not isinstance(value, bool):
            raise WatchError(f"{what} must be true or false")
    return check


#: A watch's signal settings (issue 23): field name -> its check. Every entry point (CLI, HTTP
#: API, watches file, news.watches) passes them through ``validate_options``.
WATCH_OPTIONS: dict[str, Callable[[object], None]] = {
    "priority": _one_of("priority", PRIORITIES, optional=True),
    "digest": _one_of("digest", DIGESTS, optional=True),
    "live": _flag("live"),
    "webhook_format": _one_of("webhook_format", WEBHOOK_FORMATS, optional=False),
    "spike_hours": _whole("spike_hours", MAX_SPIKE_HOURS),
    "spike_days": _whole("spike_days", MAX_SPIKE_DAYS),
    "trend_alerts": _flag("trend_alerts"),
}


def validate_options(options: Mapping[str, object]) -> dict[str, Any]:
    """The signal settings in ``options`` (unknown names refused), checked; raises
    ``WatchError``. A watch that is neither live nor digested would say nothing: refused."""
    unknown = sorted(set(options) - set(WATCH_OPTIONS))
    if unknown:
        raise WatchError(f"unknown watch setting(s): {', '.join(map(_shown, unknown))}; "
                         f"known: {', '.join(WATCH_OPTIONS)}")
    for name, value in options.items():
        WATCH_OPTIONS[name](value)
    if options.get("live") is False and options.get("digest") is None:
        raise WatchError("a watch with live alerts off needs a digest (hourly or daily)")
    return dict(options)


def validate_watch(name: object, query: object = None, *, webhook_url: object = None,
                   rate_limit: object = None, plurals: bool = False) -> tuple[str, str]:
    """Check everything a watch is made of, wherever it comes from (the CLI, the HTTP API, the
    watches file, a record on news.watches); return its name and query as stored (stripped;
    the query defaults to the name). Raises ``WatchError`` with the reason, never anything
    else, whatever the values' types.

    * name: a string of at most ``MAX_NAME_CHARS`` characters (once stripped) with at least one
      word and no control characters (C0/C1 controls, line separators, lone surrogates);
    * query: a string (or None: the name) without control characters, in the query language
      (at most ``MAX_QUERY_CHARS`` characters...);
    * webhook_url: None, or an http(s) URL of at most ``MAX_WEBHOOK_CHARS`` characters without
      whitespace, control characters or backslashes, with a host (at most ``MAX_HOST_CHARS``
      characters, labels of at most ``MAX_LABEL_CHARS``; letters, digits, "-" and "_", or an
      internationalised name, or a bracketed IPv6 address) and a port, if any, in 1..65535.
      Whether the host may be a target is checked apart: ``agents.webhook.core.refusal_reason``;
    * rate_limit: None (the configured default), or an int (not a bool) from 1 to
      ``MAX_RATE_LIMIT``; 0 is refused rather than read as "the default".

    ``plurals`` only says how to parse the query (as the registry that will compile it does,
    so it is parsed once); it never changes what is refused."""
    checked_name = _check_name(name)
    checked_query = _check_query(checked_name if query is None else query, plurals)
    if webhook_url is not None:
        _check_webhook_url(webhook_url)
    if rate_limit is not None:
        _check_rate_limit(rate_limit)
    return checked_name, checked_query


def check_watch(watch: Watch, *, plurals: bool = False) -> None:
    """Validate a watch record read from news.watches, which any producer may write:
    ``decode`` checks no field's type, so this does, then ``validate_watch``; raises
    ``WatchError``. ``plurals``: the registry's, so the query is parsed once."""
    if not isinstance(watch.id, str) or not watch.id:
        raise WatchError("watch id must be a non-empty string")
    if len(watch.id) > MAX_ID_CHARS:
        raise WatchError(f"watch id is {len(watch.id)} characters; the limit is {MAX_ID_CHARS}")
    _check_text("watch id", watch.id)
    if not isinstance(watch.query, str):  # None is "the name" only when making a watch
        raise WatchError(f"watch query must be a string, not {type(watch.query).__name__}")
    created = watch.created_at
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise WatchError(f"watch created_at must be a number, not {type(created).__name__}")
    validate_watch(watch.name, watch.query, webhook_url=watch.webhook_url,
                   rate_limit=watch.rate_limit, plurals=plurals)
    validate_options({name: getattr(watch, name) for name in WATCH_OPTIONS})


def make_watch(name: str, query: str | None = None, *, created_at: float | None = None,
               webhook_url: str | None = None, rate_limit: int | None = None,
               **options: Any) -> Watch:
    """A validated watch (``validate_watch``, ``validate_options`` for the signal settings;
    raises ``WatchError``); its id derives from the folded name, so adding it twice is a
    no-op."""
    checked_name, checked_query = validate_watch(name, query, webhook_url=webhook_url,
                                                 rate_limit=rate_limit)
    return Watch(id=stable_id("watch", normalize(name), length=12), name=checked_name,
                 query=checked_query,
                 created_at=time.time() if created_at is None else created_at,
                 webhook_url=webhook_url, rate_limit=rate_limit,
                 **validate_options(options))


def load_watch_file(path: Path) -> list[Watch]:
    """Watches from a text file: one per line, ``name: query`` or just ``query``; # comments."""
    watches: list[Watch] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, query = line.partition(":")
        try:
            watches.append(make_watch(name, query if sep else None, created_at=0.0))
        except WatchError as exc:
            raise WatchError(f"{path}:{number}: {exc}") from None
    return watches

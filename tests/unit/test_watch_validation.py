"""One validation for watches from every entry point (pure functions; no broker).

``validate_watch`` checks name, query, webhook URL syntax and rate limit; ``make_watch``
(CLI, HTTP API, watches file) and ``check_watch`` (records read from news.watches) go
through it. The DNS/SSRF check of the webhook host is ``refusal_reason``
(tests/unit/test_ratelimit_webhook.py); the CLI is tested in tests/unit/test_cli.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from agents.alert.backfill import backfill_matcher
from agents.watch.definitions import (
    MAX_NAME_CHARS,
    MAX_RATE_LIMIT,
    MAX_WEBHOOK_CHARS,
    check_watch,
    make_watch,
    validate_watch,
)
from agents.watch.registry import WatchRegistry
from streams.errors import WatchError
from streams.records import Article, Watch, encode
from streams.settings import load_settings

LABEL_63 = "a" * 63
HOST_253 = ".".join([LABEL_63] * 3 + ["b" * 61])  # 63 * 3 + 61 + 3 dots = 253

# (name, query, webhook_url, rate_limit, what the reason says)
BAD: list[tuple[Any, Any, Any, Any, str]] = [
    # names
    ("", None, None, None, "at least one word"),
    ("   ", None, None, None, "at least one word"),
    ("!!!", None, None, None, "at least one word"),
    ("Taiwan\x00Strait", "x", None, None, r"name.*control character U\+0000"),
    ("bell\x07", "x", None, None, r"name.*control character U\+0007"),
    ("tab\there", "x", None, None, r"name.*control character U\+0009"),
    ("line\u2028break", "x", None, None, r"name.*control character U\+2028"),
    ("lone \ud800 surrogate", "x", None, None, r"name.*control character U\+D800"),
    ("x" * (MAX_NAME_CHARS + 1), "x", None, None, f"name.*limit is {MAX_NAME_CHARS}"),
    ("n" * 61_000, "x", None, None, f"name.*limit is {MAX_NAME_CHARS}"),
    (42, "x", None, None, "name must be a string"),
    (None, "x", None, None, "name must be a string"),
    # queries
    ("w", "Taiwan\x00Strait", None, None, r"query.*control character U\+0000"),
    ("w", "a\x1fb", None, None, r"query.*control character U\+001F"),
    ("w", "a\nOR b", None, None, r"query.*control character U\+000A"),
    ("w", "x " * 600, None, None, "the limit is 1000"),
    ("w", 42, None, None, "query must be a string"),
    ("w", ["a"], None, None, "query must be a string"),
    ("w", "bad (query", None, None, "expected '\\)'"),
    ("w", "NOT x", None, None, "position"),
    # webhook URLs that made the HTTP API answer 500
    ("w", None, "http://host:99999/", None, "port"),
    ("w", None, "http://host:abc/", None, "port"),
    ("w", None, "http://[::1/", None, "IPv6"),
    ("w", None, f"http://{'a' * 64}.com/", None, "label.*63"),
    ("w", None, f"http://{'a' * 10_000}.com/", None, f"limit is {MAX_WEBHOOK_CHARS}"),
    # other bad webhook URLs
    ("w", None, f"http://{HOST_253}x/", None, "host.*253"),
    ("w", None, f"http://{'a' * 1000}/", None, "host.*253"),
    ("w", None, "http://" + "a" * (MAX_WEBHOOK_CHARS - 7) + "/", None,
     f"limit is {MAX_WEBHOOK_CHARS}"),
    ("w", None, "http://host:0/", None, "port 0"),
    ("w", None, "http://host:+80/", None, "port"),
    ("w", None, "http://[::1]x/", None, "after"),
    ("w", None, "http://[notanip]/", None, "IPv"),
    ("w", None, "ftp://example.org/x", None, "http:// or https://"),
    ("w", None, "javascript:alert(1)", None, "http:// or https://"),
    ("w", None, "example.org/hook", None, "http:// or https://"),
    ("w", None, "", None, "http:// or https://"),
    ("w", None, "http:///path", None, "no host"),
    ("w", None, "http://a..b/", None, "empty label"),
    ("w", None, "http://exa mple.com/", None, r"whitespace or control character U\+0020"),
    ("w", None, "http://example.com/\x00", None, r"U\+0000"),
    ("w", None, "http://example.com/a\tb", None, r"U\+0009"),
    ("w", None, " http://example.com/", None, r"U\+0020"),
    ("w", None, "http://evil.com\\@127.0.0.1/", None, "backslash"),
    ("w", None, "http://a@b@127.0.0.1/", None, "%40"),
    ("w", None, "http://ex%61mple.com/", None, "character '%'"),
    ("w", None, "http://ex_a*mple.com/", None, "character '\\*'"),
    ("w", None, f"https://{'ü' * 60}.de/", None, "label"),
    ("w", None, 5, None, "webhook URL must be a string"),
    ("w", None, b"http://example.com/", None, "webhook URL must be a string"),
    # rate limits
    ("w", None, None, -1, "between 1 and"),
    ("w", None, None, 0, "omit"),
    ("w", None, None, True, "whole number"),
    ("w", None, None, False, "whole number"),
    ("w", None, None, 2**63, "between 1 and"),
    ("w", None, None, MAX_RATE_LIMIT + 1, "between 1 and"),
    ("w", None, None, 10**5000, "between 1 and"),
    ("w", None, None, 1.5, "whole number"),
    ("w", None, None, 5.0, "whole number"),
    ("w", None, None, "5", "whole number"),
]


@pytest.mark.parametrize(("name", "query", "webhook", "limit", "reason"), BAD,
                         ids=[f"{n}-{row[-1]}" for n, row in enumerate(BAD)])
def test_every_bad_value_is_a_watch_error_with_its_reason(name: Any, query: Any, webhook: Any,
                                                          limit: Any, reason: str) -> None:
    with pytest.raises(WatchError, match=reason) as caught:
        validate_watch(name, query, webhook_url=webhook, rate_limit=limit)
    message = str(caught.value)
    assert message and len(message) < 400, "a reason, short enough to show a user"
    # make_watch (CLI, HTTP API, watches file) refuses it the same way.
    with pytest.raises(WatchError, match=reason):
        make_watch(name, query, webhook_url=webhook, rate_limit=limit)


GOOD: list[tuple[str, str | None, str | None, int | None]] = [
    ("Taiwan Strait", None, None, None),
    ("  Taiwan Strait  ", "  \"Taiwan Strait\" NEAR/5 drills  ", None, None),
    ("x" * MAX_NAME_CHARS, "x", None, None),
    ("Zürich Flughafen", "Zürich", None, None),
    ("soft\u00adhyphen", "x", None, None),
    ("w", "x", "http://example.com/hook", None),
    ("w", "x", "HTTPS://Hooks.Example.COM:8443/a/b?c=d&e=%20f#frag", None),
    ("w", "x", "http://93.184.215.14/hook", None),
    ("w", "x", "http://[2001:db8::1]:8080/x", None),
    ("w", "x", "http://user:p%40ss@example.com/", None),
    ("w", "x", "https://bücher.de/hook", None),
    ("w", "x", "http://example.com./", None),
    ("w", "x", "http://my_host.internal:65535/", None),
    ("w", "x", "http://host:/", None),
    ("w", "x", f"http://{HOST_253}/", None),
    ("w", "x", f"http://{LABEL_63}.com/", None),
    ("w", "x", "http://example.com/" + "p" * (MAX_WEBHOOK_CHARS - 19), None),
    ("w", "x", None, 1),
    ("w", "x", None, 20),
    ("w", "x", "http://example.com/", MAX_RATE_LIMIT),
]


@pytest.mark.parametrize(("name", "query", "webhook", "limit"), GOOD)
def test_good_values_make_a_watch(name: str, query: str | None, webhook: str | None,
                                  limit: int | None) -> None:
    if webhook is not None:
        assert len(webhook) <= MAX_WEBHOOK_CHARS
    watch = make_watch(name, query, webhook_url=webhook, rate_limit=limit)
    assert watch.name == name.strip()
    assert watch.query == (name if query is None else query).strip()
    assert watch.webhook_url == webhook and watch.rate_limit == limit
    assert validate_watch(name, query, webhook_url=webhook, rate_limit=limit) == \
        (watch.name, watch.query)
    check_watch(watch)  # what make_watch makes, the feed accepts


def _record(**fields: Any) -> Watch:
    """A Watch as ``decode`` builds it from any producer's JSON: fields of any type."""
    base: dict[str, Any] = {"id": "w1", "name": "Taiwan Strait", "query": "Taiwan Strait"}
    return Watch(**{**base, **fields})


@pytest.mark.parametrize(("fields", "reason"), [
    ({"name": 5}, "name must be a string"),
    ({"query": 5}, "query must be a string"),
    ({"query": None}, "query must be a string"),
    ({"query": ["a"]}, "query must be a string"),
    ({"name": "a\x00b"}, "control character"),
    ({"name": "n" * 61_000}, "limit is"),
    ({"webhook_url": "http://host:99999/"}, "port"),
    ({"webhook_url": 7}, "must be a string"),
    ({"rate_limit": -1}, "between 1 and"),
    ({"rate_limit": 0}, "omit"),
    ({"rate_limit": True}, "whole number"),
    ({"id": 5}, "id"),
    ({"id": ""}, "id"),
    ({"created_at": "yesterday"}, "created_at"),
    ({"created_at": True}, "created_at"),
])
def test_a_record_from_any_producer_is_checked_in_full(fields: dict[str, Any],
                                                       reason: str) -> None:
    with pytest.raises(WatchError, match=reason):
        check_watch(_record(**fields))


def test_the_watch_feed_logs_and_skips_an_invalid_record_without_crashing(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import agents.watch.feed as feed

    registry = WatchRegistry()
    monkeypatch.setattr(feed, "registry", registry)
    good = make_watch("Taiwan Strait")
    bad_values = [
        orjson.dumps({"id": "x", "name": "n", "query": 5}),  # crashed the feed: TypeError
        orjson.dumps({"id": "x", "name": "n", "query": ["a"]}),
        orjson.dumps({"id": "x", "name": 5, "query": "a"}),
        orjson.dumps({"id": "x", "name": "a\x00b", "query": "a"}),
        orjson.dumps({"id": "x", "name": "n" * 61_000, "query": "a"}),
        orjson.dumps({"id": "x", "name": "n", "query": "a", "rate_limit": -1}),
        orjson.dumps({"id": "x", "name": "n", "query": "a", "rate_limit": True}),
        orjson.dumps({"id": "x", "name": "n", "query": "a", "webhook_url": "http://[::1/"}),
        b"not json",
        orjson.dumps([1, 2]),
    ]
    for n, value in enumerate(bad_values):
        feed._stage(b"x", value, f"news.watches[0]@{n}")
    feed._stage(good.id.encode(), encode(good), "news.watches[0]@99")
    registry.rebuild()
    assert list(registry.matcher.watches) == [good.id]
    warnings = [r.getMessage() for r in caplog.records if "invalid watch" in r.getMessage()]
    assert len(warnings) == len(bad_values)


def test_a_rate_limit_of_0_stored_by_the_old_cli_still_means_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.watch.feed as feed

    registry = WatchRegistry()
    monkeypatch.setattr(feed, "registry", registry)
    old = dataclasses.replace(make_watch("Taiwan Strait"), rate_limit=0)  # bypasses the check
    feed._stage(old.id.encode(), encode(old), "news.watches[0]@0")
    registry.rebuild()
    loaded = registry.get(old.id)
    assert loaded is not None and loaded.rate_limit is None


@pytest.mark.parametrize(("plurals", "hits"), [("1", 1), ("0", 0)])
def test_backfill_matches_with_the_live_plurals_setting(plurals: str, hits: int) -> None:
    settings = load_settings({"WIREWATCH_WATCH_PLURALS": plurals})
    matcher = backfill_matcher(settings, make_watch("strait"))
    article = Article(id="a", title="Warships cross the straits", text="Tension rises.")
    assert len(matcher.match(article)) == hits

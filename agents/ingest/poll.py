"""Polling one source: fetch, parse, publish what is new, remember it.

``Poller.poll(source, state, partition, sink)`` does one round for one source:

1. Fetch the document with the state's validators (``fetch.Fetcher``: robots, limits,
   conditional GET, guard). 304: done. A failure: the state backs off (``state.py``).
2. Parse it (``feeds.parse_document``, in a thread: feedparser takes ~1.7 ms an item). A
   sitemap index: its child sitemaps too (the newest ``max_children`` by lastmod, each
   with its own validators).
3. The items not seen before and not older than ``max_age`` are new; at most
   ``max_new_per_poll`` of them, the newest, in one round (the rest next time).
4. In batches, oldest first: fetch each new item's page where needed (sitemap items
   always; feed items unless the feed carries the full text, or as ``pages=`` says), build
   one raw message per item (``build_message``), **publish the batch and wait for the
   broker's acknowledgement, then mark the items seen and save the state** (acknowledged
   too). A crash between the two publishes a batch again (at-least-once); the message key
   is the item's id, so clean gives the copy the same article id and dedup drops it.
   Before each batch the poller checks it still owns the source's partition
   (``Sink.owns``): after a rebalance the new owner takes over from the saved state.
5. The ETag / Last-Modified are kept only when every new item went out, so a round cut
   short (the per-round cap, a page to retry) is fetched in full next time.

The raw message (``news.raw``, key = item id) is a JSON object the clean stage reads as
is: ``id``, ``url``, ``title``, ``published_at``, ``source``, ``language``, ``feed``, and the
body as ``html`` (the article page, or the feed's HTML content or summary) or ``text``
(plain-text content or summary). Clean fills what the JSON leaves out from the page (body,
authors, canonical URL, date...), and JSON fields win, so the feed's title and date are
kept. A page that would make the message larger than ``max_message_bytes`` loses its
scripts, styles, SVG and comments first; if it is still too large the item falls back to
the feed's text, or is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from agents.clean.core import decode_payload
from agents.ingest.feeds import Document, DocumentError, Item, SitemapRef, parse_document
from agents.ingest.fetch import Fetcher, Response
from agents.ingest.sources import Source
from agents.ingest.state import SourceState, Transition
from streams.errors import RejectedInput

__all__ = ["ITEM_OUTCOMES", "POLL_OUTCOMES", "IngestConfig", "Observer", "PollReport",
           "Poller", "Sink", "build_message", "decode_page", "shrink_html"]

log = logging.getLogger("wirewatch.ingest")

#: A round's outcome: the document changed (parsed), was not modified (304), or failed;
#: "aborted": the partition moved to another process mid-round.
POLL_OUTCOMES = ("changed", "not_modified", "failed", "aborted")
#: What became of a new item: published with its page or the feed's full text; published
#: with only the feed's summary (page unavailable or not wanted); dropped (nothing to
#: publish); page_retry: its page failed for now, tried again next round.
ITEM_OUTCOMES = ("published", "summary_only", "dropped", "page_retry")
BATCH = 16
_PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
                "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class IngestConfig:
    interval: float = 600.0
    max_backoff: float = 6 * 3600.0
    failing_after: float = 24 * 3600.0
    max_seen: int = 10_000
    max_new_per_poll: int = 500
    sitemap_max_age_hours: float = 48.0
    full_content_chars: int = 2_000
    max_feed_bytes: int = 10 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    max_message_bytes: int = 1_048_576
    page_attempts: int = 3
    max_children: int = 20

    def interval_of(self, source: Source) -> float:
        return source.interval or self.interval


class Sink(Protocol):
    """Where a poll's output goes: the worker's Faust producer or the CLI's own."""

    def owns(self, partition: int) -> bool: ...

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None: ...

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None: ...


class Observer:
    """Counts for metrics; the base class counts nothing."""

    def poll(self, outcome: str) -> None: ...

    def items(self, outcome: str, count: int = 1) -> None: ...

    def document_error(self, reason: str) -> None: ...

    def parse_seconds(self, seconds: float) -> None: ...

    def transition(self, source: Source, state: SourceState, change: Transition) -> None:
        _log_transition(source, state, change)


@dataclass(slots=True)
class PollReport:
    outcome: str
    reason: str | None = None
    new: int = 0
    published: int = 0
    summary_only: int = 0
    dropped: int = 0
    retry: int = 0
    left: int = 0  # new items left for the next round (the per-round cap)


# --------------------------------------------------------------------------- messages

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)


def decode_page(body: bytes, content_type: str | None) -> str:
    """A page's text: UTF-8, else the HTTP charset if the bytes bear it out, else the clean
    stage's own reading of an HTML page (its ``<meta charset>`` checked against detection),
    else UTF-8 with replacement characters."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    text: str | None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
        match = _CHARSET.search(content_type or "")
        if match:
            try:
                text = body.decode(match.group(1))
            except (LookupError, UnicodeDecodeError):
                text = None
        if text is None:
            try:
                text = decode_payload(body, len(body) + 1)
            except RejectedInput:
                text = body.decode("utf-8", "replace")
    return text.replace("\x00", "")


_STRIPPABLE = re.compile(
    r"<script\b(?![^>]*application/ld\+json)[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>"
    r"|<svg\b[^>]*>.*?</svg\s*>|<!--.*?-->|<noscript\b[^>]*>.*?</noscript\s*>",
    re.IGNORECASE | re.DOTALL)


def shrink_html(page: str) -> str:
    """The page without scripts (JSON-LD kept: clean reads dates and authors there),
    styles, inline SVG, noscript blocks and comments: none of it is article text."""
    return _STRIPPABLE.sub("", page)


def _message(source: Source, item: Item, body_field: str, body: str) -> bytes:
    return orjson.dumps({
        "id": item.id,
        "url": item.link,
        "title": item.title,
        "published_at": item.published_at,
        "source": source.name or item.publication,
        "language": item.language or source.language,
        "feed": source.url,
        body_field: body,
    })


def _feed_text(item: Item, full_only: bool, min_chars: int) -> tuple[str, str] | None:
    """(field, body) from the feed itself: its content, else its summary; None if neither
    (or, with ``full_only``, when the content is shorter than ``min_chars`` of text)."""
    if item.content and (not full_only or _text_chars(item.content) >= min_chars):
        return ("html" if item.content_html else "text", item.content)
    if full_only or not item.summary:
        return None
    return ("html" if item.summary_html else "text", item.summary)


_TAGS = re.compile(r"<[^>]*>")


def _text_chars(markup: str) -> int:
    return len(" ".join(_TAGS.sub(" ", markup).split()))


def build_message(source: Source, item: Item, page: str | None, *, max_bytes: int,
                  full_content_chars: int) -> tuple[str, bytes | None]:
    """(outcome, raw message) for one item: with its page when there is one (shrunk if it
    must be), else the feed's full text (published) or summary (summary_only), else
    (dropped, None)."""
    if page is not None:
        value = _message(source, item, "html", page)
        if len(value) > max_bytes:
            value = _message(source, item, "html", shrink_html(page))
        if len(value) <= max_bytes:
            return "published", value
    full = _feed_text(item, True, full_content_chars)
    if full is not None:
        value = _message(source, item, *full)
        if len(value) <= max_bytes:
            return "published", value
    partial = _feed_text(item, False, full_content_chars)
    if partial is not None:
        value = _message(source, item, *partial)
        if len(value) <= max_bytes:
            return "summary_only", value
    return "dropped", None


# --------------------------------------------------------------------------- polling


def _log_transition(source: Source, state: SourceState, change: Transition) -> None:
    name = source.name or source.url
    fields = {"source": source.url, "reason": change.reason, "failures": change.failures}
    if change.kind == "recovered":
        down = (time.time() - change.since) if change.since else 0.0
        log.info("ingest: %s recovered after %d failure(s) over %.0f s (last: %s)", name,
                 change.failures, down, change.reason, extra=fields)
    elif change.kind == "failing_long":
        log.error("ingest: %s has been failing for %.1f h (%d polls; %s: %s); retrying in "
                  "%.0f s", name, (time.time() - (change.since or time.time())) / 3600,
                  change.failures, change.reason, state.detail, change.retry_in or 0,
                  extra=fields)
    else:
        log.warning("ingest: %s %s: %s (%s); retrying in %.0f s", name,
                    "failing" if change.kind == "failing" else "now failing with",
                    change.reason, state.detail, change.retry_in or 0, extra=fields)


class Poller:
    def __init__(self, fetcher: Fetcher, config: IngestConfig,
                 observer: Observer | None = None,
                 parse: Callable[..., Awaitable[Document]] | None = None) -> None:
        self.fetcher = fetcher
        self.config = config
        self.observer = observer or Observer()
        self._parse = parse or self._parse_in_thread

    async def _parse_in_thread(self, body: bytes, url: str, content_type: str | None,
                               now: float) -> Document:
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(parse_document, body, url, content_type,
                                           max_bytes=self.config.max_feed_bytes, now=now)
        finally:
            self.observer.parse_seconds(time.perf_counter() - started)

    # ------------------------------------------------------------------ one round

    async def poll(self, source: Source, state: SourceState, partition: int, sink: Sink,
                   now: float | None = None) -> PollReport:
        now = time.time() if now is None else now
        state.last_poll = now
        if state.first_poll is None:
            state.first_poll = now
        response = await self.fetcher.fetch(source.url, kind="feed", etag=state.etag,
                                            last_modified=state.last_modified,
                                            max_bytes=self.config.max_feed_bytes,
                                            accept=_FEED_ACCEPT)
        if response.not_modified and not state.children:
            return await self._done(source, state, partition, sink, now,
                                    PollReport("not_modified"))
        if response.not_modified:
            # An unchanged sitemap index: its children may have changed all the same.
            doc = Document(kind="sitemapindex", sitemaps=[SitemapRef(u) for u in state.children])
            response.etag, response.last_modified = state.etag, state.last_modified
        elif not response.ok:
            return await self._failed(source, state, partition, sink, now, response.reason or
                                      "bad_response", response.detail, response.retry_after)
        else:
            try:
                doc = await self._parse(response.body, response.url, response.content_type,
                                        now)
            except DocumentError as exc:
                self.observer.document_error(exc.reason)
                return await self._failed(source, state, partition, sink, now, exc.reason,
                                          exc.detail)
        items = list(doc.items)
        validators: dict[str, list[str | None]] = {}
        if doc.sitemaps:
            children, failure, validators, fetched = await self._children(source, state, doc,
                                                                          now)
            if failure is not None:
                return await self._failed(source, state, partition, sink, now, *failure)
            if response.not_modified and not fetched:
                state.children = validators
                return await self._done(source, state, partition, sink, now,
                                        PollReport("not_modified"))
            items.extend(children)
        return await self._publish_new(source, state, partition, sink, now, doc, items,
                                       response, validators)

    async def _children(self, source: Source, state: SourceState, doc: Document, now: float
                        ) -> tuple[list[Item], tuple[str, str] | None,
                                   dict[str, list[str | None]], int]:
        """The items of an index's child sitemaps (newest first, at most ``max_children``;
        an index inside an index is not followed), the last failure, each child's
        validators (empty for a failed one, so it is tried again), and how many children
        sent a new version."""
        max_age = self._max_age(source, True)
        refs = [r for r in doc.sitemaps
                if not (max_age and r.lastmod and _age_hours(r.lastmod, now) > max_age)]
        refs.sort(key=lambda r: r.lastmod or "", reverse=True)
        items: list[Item] = []
        failure: tuple[str, str] | None = None
        validators: dict[str, list[str | None]] = {}
        unchanged = fetched = 0
        for ref in refs[: self.config.max_children]:
            etag, modified = (state.children.get(ref.url) or [None, None])[:2]
            validators[ref.url] = [None, None]
            response = await self.fetcher.fetch(ref.url, kind="feed", etag=etag,
                                                last_modified=modified,
                                                max_bytes=self.config.max_feed_bytes,
                                                accept=_FEED_ACCEPT)
            if response.not_modified:
                validators[ref.url] = [etag, modified]
                unchanged += 1
                continue
            if not response.ok:
                failure = (response.reason or "bad_response", f"{ref.url}: {response.detail}")
                continue
            try:
                child = await self._parse(response.body, response.url, response.content_type,
                                          now)
            except DocumentError as exc:
                self.observer.document_error(exc.reason)
                failure = (exc.reason, f"{ref.url}: {exc.detail}")
                continue
            items.extend(child.items)
            fetched += 1
            validators[ref.url] = [response.etag, response.last_modified]
        if failure is not None and (fetched or unchanged):
            failure = None  # a failing child among working ones: not the source's failure
        # The validators are kept once every item went out (see _publish_new).
        return items, failure, validators, fetched

    def _max_age(self, source: Source, sitemap: bool) -> float:
        if source.max_age is not None:
            return source.max_age
        return self.config.sitemap_max_age_hours if sitemap else 0.0

    async def _publish_new(self, source: Source, state: SourceState, partition: int,
                           sink: Sink, now: float, doc: Document, items: list[Item],
                           response: Response, validators: dict[str, list[str | None]]
                           ) -> PollReport:
        report = PollReport("changed")
        max_age = self._max_age(source, doc.is_sitemap)
        present: list[str] = []
        new: list[Item] = []
        listed: set[str] = set()
        for item in items:
            if item.id in listed:
                continue
            listed.add(item.id)
            present.append(item.id)
            if state.has_seen(item.id):
                continue
            newest = item.newest_date()
            if max_age and newest and _age_hours(newest, now) > max_age:
                continue
            new.append(item)
        report.new = len(new)
        if len(new) > self.config.max_new_per_poll:
            # Keep the newest: dated ones by date, then undated ones in document order.
            ranked = sorted(range(len(new)), key=lambda i: (new[i].newest_date() is not None,
                                                            new[i].newest_date() or "", -i),
                            reverse=True)
            keep = set(ranked[: self.config.max_new_per_poll])
            report.left = len(new) - len(keep)
            new = [item for i, item in enumerate(new) if i in keep]
        # Oldest first: by date when every item has one, else reversed document order
        # (feeds list the newest first).
        new.reverse()
        if all(item.newest_date() for item in new):
            new.sort(key=lambda item: _sort_key(item.newest_date() or ""))
        for start in range(0, len(new), BATCH):
            if not sink.owns(partition):
                report.outcome = "aborted"
                return report
            batch = new[start:start + BATCH]
            built = await asyncio.gather(*(self._build(source, doc, item, state)
                                           for item in batch))
            messages = [(item.id.encode(), value) for item, (_, value) in zip(batch, built,
                                                                              strict=True)
                        if value is not None]
            if messages:
                await sink.publish(messages)
            done = []
            for item, (outcome, _) in zip(batch, built, strict=True):
                self.observer.items(outcome)
                if outcome == "page_retry":
                    report.retry += 1
                    state.page_attempts[item.id] = state.page_attempts.get(item.id, 0) + 1
                    continue
                done.append(item.id)
                if outcome == "published":
                    report.published += 1
                elif outcome == "summary_only":
                    report.summary_only += 1
                else:
                    report.dropped += 1
            state.mark_seen(done)
            state.published += len(messages)
            _bound_attempts(state)
            await sink.save(partition, source.url.encode(), state.to_json())
        state.refresh(present, self.config.max_seen)
        if report.left or report.retry:
            state.etag = state.last_modified = None  # fetch it whole next time
            state.children = {}
        else:
            state.etag, state.last_modified = response.etag, response.last_modified
            state.children = validators
        return await self._done(source, state, partition, sink, now, report)

    async def _build(self, source: Source, doc: Document, item: Item, state: SourceState
                     ) -> tuple[str, bytes | None]:
        config = self.config
        wanted = (doc.is_sitemap or source.pages == "always"
                  or (source.pages == "auto"
                      and not (item.content and _text_chars(item.content)
                               >= config.full_content_chars)))
        page = None
        if wanted and item.link:
            response = await self.fetcher.fetch(item.link, kind="page",
                                                max_bytes=config.max_page_bytes,
                                                accept=_PAGE_ACCEPT)
            if response.ok:
                kind = (response.content_type or "text/html").split(";")[0].strip().lower()
                if kind in _HTML_TYPES or not kind:
                    page = decode_page(response.body, response.content_type)
                else:
                    log.debug("ingest: %s is %s, not a page", item.link, kind)
            elif response.transient and state.page_attempts.get(item.id, 0) + 1 < config.page_attempts:
                return "page_retry", None
        return build_message(source, item, page, max_bytes=config.max_message_bytes,
                             full_content_chars=config.full_content_chars)

    # ------------------------------------------------------------------ endings

    async def _done(self, source: Source, state: SourceState, partition: int, sink: Sink,
                    now: float, report: PollReport) -> PollReport:
        change = state.record_success(now, self.config.interval_of(source))
        if change is not None:
            self.observer.transition(source, state, change)
        if report.left:
            state.next_poll = min(state.next_poll, now + 1.0)  # the rest, soon
        self.observer.poll(report.outcome)
        await sink.save(partition, source.url.encode(), state.to_json())
        return report

    async def _failed(self, source: Source, state: SourceState, partition: int, sink: Sink,
                      now: float, reason: str, detail: str,
                      retry_after: float | None = None) -> PollReport:
        change = state.record_failure(now, reason, detail,
                                      interval=self.config.interval_of(source),
                                      max_backoff=self.config.max_backoff,
                                      failing_after=self.config.failing_after,
                                      retry_after=retry_after)
        if change is not None:
            self.observer.transition(source, state, change)
        else:
            log.debug("ingest: %s still failing (%s, %d in a row)", source.url, reason,
                      state.failures)
        self.observer.poll("failed")
        if sink.owns(partition):
            await sink.save(partition, source.url.encode(), state.to_json())
        return PollReport("failed", reason=reason)


def _bound_attempts(state: SourceState, limit: int = 1_000) -> None:
    if len(state.page_attempts) > limit:
        for key in list(state.page_attempts)[: len(state.page_attempts) - limit]:
            del state.page_attempts[key]


def _sort_key(iso: str) -> float:
    return -_age_hours(iso, 0.0)


def _age_hours(iso: str, now: float) -> float:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (now - moment.timestamp()) / 3600.0


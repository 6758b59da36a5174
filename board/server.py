"""``wirewatch board``: the desk's live page, its JSON API, its live events, its Kafka reader.

Pages and calls (every answer carries the security headers below; every refusal is a 4xx
JSON ``{"error": reason}``, never a 500):

    GET    /                      the page (static/index.html; board.css and board.js beside it)
    GET    /events                server-sent events: hello, alert, health, watches, reset
    GET    /api/alerts            cards newest first: ?watch=ID&kind=opened|update|summary
                                  &since=&until= (unix seconds) &q=TEXT &before=SEQ &limit=N
    GET    /api/alerts/ID         one alert with its revision history
    GET    /api/stories/ID        a story: its articles, summary, alerts and their revisions
    GET    /api/watches           watches with their hits in the window (?q=NAME&limit=N)
    POST   /api/watches           add or replace a watch (as the workers' POST /watches/)
    POST   /api/watches/check     check a watch without saving it (the form's live check)
    DELETE /api/watches/ID        remove a watch (a tombstone on news.watches)
    GET    /api/health            the health strip's numbers
    GET    /api/status            the window's sizes and bounds; whether it is rebuilt

Writes need ``Authorization: Bearer $WIREWATCH_API_TOKEN`` (the workers' token; none
configured: 403) and a JSON body of at most ``MAX_BODY_BYTES``; a token in a URL is refused.
They validate with the code the CLI and the workers' API use (``make_watch`` =
``validate_watch``, the webhook target guard ``refusal_reason``) and write to the compacted
``news.watches`` topic, which every worker follows; a query that does not parse is answered
with the parser's ``position`` so the page can point at it.

The reader is one aiokafka consumer with no group: it assigns itself every partition of
``news.alerts``, ``news.stories``, ``news.deadletter`` and ``news.watches`` and commits
nothing, so it never joins (or rebalances) the workers' group. On start it seeks each
partition to the window's start (``offsets_for_times``; at most a bounded number of records
back) and ``news.watches`` to its beginning, rebuilds the window, then follows live.

Why the page is not also on each worker's web port: the worker's web server shares the
agents' event loop and admits requests through a budget with two running at a time
(``streams/web.py``). A live-event stream is a request that never ends, so two open pages
would hold every slot and queue the worker's own ``/metrics`` and watch API behind them;
and each worker would then hold the window and read the alert and story topics a second time.
A separate process costs the pipeline nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents.alert.backfill import backfill
from agents.watch import definitions
from agents.watch.definitions import check_watch, make_watch
from agents.webhook.core import refusal_reason
from board.health import DeadLetters, HealthTracker, read_metrics
from board.settings import BoardSettings
from board.window import ALERT_KINDS, KIND, BoardWindow, Bounds
from streams.client import topic_partitions
from streams.errors import BadRecord, WatchError
from streams.records import Watch, decode, encode, stable_id
from streams.settings import Settings
from streams.text import normalize
from streams.topics import bootstrap_servers, topic_name

__all__ = ["MAX_BODY_BYTES", "Board", "make_app", "run_board", "security_headers"]

log = logging.getLogger("wirewatch.board")

MAX_BODY_BYTES = 16 * 1024
MAX_ID_CHARS = 512
MAX_QUERY_PARAM_CHARS = 200
MAX_METRICS_BYTES = 4 * 1024 * 1024
#: Events a slow page may fall behind before its stream is closed (it reconnects and replays).
MAX_QUEUED_EVENTS = 2000
PING_SECONDS = 15.0
EXPIRE_EVERY_SECONDS = 30.0
DEAD_LETTER_HOURS = 1.0
#: The longest the reader works through a batch before letting pages and events run.
YIELD_EVERY_SECONDS = 0.01
#: A watch's settings beyond these (priority, digest... where agents/watch/definitions.py has
#: WATCH_OPTIONS) are taken too, checked by the same ``make_watch``.
WATCH_OPTIONS: dict[str, object] = dict(getattr(definitions, "WATCH_OPTIONS", {}))
WATCH_FIELDS = frozenset({"name", "query", "webhook_url", "rate_limit", "backfill",
                          *WATCH_OPTIONS})

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
STATIC_TYPES = {"index.html": "text/html", "board.css": "text/css",
                "board.js": "text/javascript", "favicon.svg": "image/svg+xml"}


# ---------------------------------------------------------------------- the board ---

@dataclass(eq=False)
class Subscriber:
    """One open live-event stream."""

    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED_EVENTS))
    overflowed: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def sse(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One server-sent event. JSON has no raw line breaks, so ``data`` is one line."""
    head = f"id: {event_id}\n" if event_id else ""
    return (f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n")


class Board:
    """The window, the watches and the health, kept current by one group-less consumer."""

    def __init__(self, settings: Settings, conf: BoardSettings, *, connect: bool = True) -> None:
        self.settings = settings
        self.conf = conf
        self.window = BoardWindow(Bounds(max_alerts=conf.max_alerts,
                                         max_revisions=conf.max_revisions,
                                         max_articles=conf.max_articles,
                                         max_age_seconds=conf.window_seconds))
        self.watches: dict[str, Watch] = {}
        self.dead_letters = DeadLetters()
        self.health_tracker = HealthTracker(conf.metrics_targets(settings))
        self.health: dict[str, Any] = self.health_tracker.snapshot(
            dead_letters=self.dead_letters.last_hour(time.time()),
            topic_prefix=settings.topic_prefix)
        self.epoch = secrets.token_hex(4)  # a restarted board's event ids start again
        self.ready = not connect
        self.subscribers: set[Subscriber] = set()
        self.connect = connect
        self.refused_watches = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._backfills: set[asyncio.Future[int]] = set()
        self._topics: dict[str, str] = {}
        self._pending: dict[TopicPartition, int] = {}
        self._http: aiohttp.ClientSession | None = None

    # -- life cycle --

    async def start(self) -> None:
        if not self.connect:
            return
        bootstrap = bootstrap_servers(self.settings)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=100,
            max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        await self._consumer.start()
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                          enable_idempotence=True)
        await self._producer.start()
        await self._assign()
        self._http = aiohttp.ClientSession()
        self._tasks = [asyncio.create_task(self._consume(), name="board-consume"),
                       asyncio.create_task(self._scrape(), name="board-scrape"),
                       asyncio.create_task(self._expire(), name="board-expire")]

    async def stop(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.closed.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            try:
                await self._consumer.stop()
            except asyncio.CancelledError:  # aiokafka 0.14's group-less coordinator (client.py)
                pass

    async def _assign(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        now = time.time()
        # How far back each topic is read at start: its window, and at most this many records
        # per partition (the window keeps fewer than that anyway).
        plan = {"alerts": (self.conf.window_seconds, 4 * self.conf.max_alerts),
                "stories": (self.conf.window_seconds, self.conf.max_articles),
                "deadletter": (DEAD_LETTER_HOURS * 3600, 100_000),
                "watches": (None, None)}
        assigned: list[TopicPartition] = []
        by_key: dict[str, list[TopicPartition]] = {}
        for key in plan:
            name = topic_name(self.settings, key)
            self._topics[name] = key
            by_key[key] = await topic_partitions(consumer, name)
            assigned += by_key[key]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        starts = await consumer.beginning_offsets(assigned)
        for key, (seconds, most) in plan.items():
            tps = by_key[key]
            if seconds is None or most is None:
                await consumer.seek_to_beginning(*tps)
                continue
            found = await consumer.offsets_for_times(
                {tp: int((now - seconds) * 1000) for tp in tps})
            for tp in tps:
                at = found.get(tp)
                offset = at.offset if at is not None else ends[tp]
                consumer.seek(tp, max(offset, ends[tp] - most, starts[tp]))
        self._pending = {tp: ends[tp] for tp in assigned if ends[tp] > starts[tp]}
        await self._check_caught_up()

    async def _check_caught_up(self) -> None:
        assert self._consumer is not None
        for tp in list(self._pending):
            if await self._consumer.position(tp) >= self._pending[tp]:
                del self._pending[tp]
        if not self._pending and not self.ready:
            self.ready = True
            stats = self.window.stats()
            log.info("board: window rebuilt (%d alerts, %d articles, %d watches)",
                     stats["alerts"], stats["articles"], len(self.watches))
            self.broadcast(sse("reset", {"epoch": self.epoch, "seq": self.window.seq}))

    async def _consume(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: aiokafka reconnects; keep reading
                log.exception("board: fetch failed")
                await asyncio.sleep(1.0)
                continue
            now = time.time()
            turn = time.perf_counter() + YIELD_EVERY_SECONDS
            for tp, messages in batches.items():
                key = self._topics.get(tp.topic, "")
                for msg in messages:
                    at = msg.timestamp / 1000 if msg.timestamp and msg.timestamp > 0 else now
                    self.take(key, msg.key, msg.value, min(at, now), now)
                    if time.perf_counter() > turn:  # a burst (a rebuild) must not starve HTTP
                        await asyncio.sleep(0)
                        turn = time.perf_counter() + YIELD_EVERY_SECONDS
            if self._pending:
                await self._check_caught_up()

    def take(self, topic: str, key: bytes | None, value: bytes | None, at: float,
             now: float) -> None:
        """One record of ``topic`` (a ``TOPICS`` key) into the board; never raises on bad
        data (a record any producer wrote is counted and skipped)."""
        if topic == "watches":
            self._take_watch(key, value)
            return
        if value is None:
            return
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            self.window.refused += 1
            return
        if not isinstance(data, dict):
            self.window.refused += 1
            return
        if topic == "alerts":
            card = self.window.add_alert(data, at, now=now)
            if card is not None and self.ready:
                self.broadcast(sse("alert", card, f"{self.epoch}.{card['seq']}"))
        elif topic == "stories":
            self.window.add_article(data, at, now=now)
        elif topic == "deadletter" and at >= now - DEAD_LETTER_HOURS * 3600:
            stage = data.get("stage")
            self.dead_letters.add(at, stage[:40] if isinstance(stage, str) else "?")

    def _take_watch(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        watch_id = key.decode("utf-8", "replace")
        if value is None:
            changed = self.watches.pop(watch_id, None) is not None
        else:
            try:
                watch = decode(Watch, value)
                check_watch(watch, plurals=bool(self.settings.watch_plurals))
            except (BadRecord, WatchError) as exc:
                self.refused_watches += 1
                log.warning("board: skipped a record on news.watches: %s", exc)
                return
            changed = self.watches.get(watch_id) != watch
            self.watches[watch_id] = watch
        if changed and self.ready:
            self.broadcast(sse("watches", {"changed": watch_id}))

    async def _scrape(self) -> None:
        while True:
            await self.scrape_once()
            await asyncio.sleep(self.conf.scrape_seconds)

    async def scrape_once(self) -> None:
        assert self._http is not None
        for target in self.health_tracker.targets:
            try:
                async with self._http.get(target, timeout=aiohttp.ClientTimeout(total=2.0)
                                          ) as response:
                    if response.status != 200:
                        raise ValueError(f"HTTP {response.status}")
                    body = await response.content.read(MAX_METRICS_BYTES)
                sample = read_metrics(body.decode("utf-8", "replace"), time.time())
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
                self.health_tracker.failed(target, str(exc) or type(exc).__name__)
                continue
            self.health_tracker.observe(target, sample)
        self.refresh_health()

    def refresh_health(self) -> None:
        self.health = self.health_tracker.snapshot(
            dead_letters=self.dead_letters.last_hour(time.time()),
            topic_prefix=self.settings.topic_prefix)
        self.broadcast(sse("health", self.health))

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY_SECONDS)
            self.window.expire()

    # -- live events --

    def broadcast(self, event: bytes) -> None:
        for subscriber in list(self.subscribers):
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow: close; the page reconnects and replays
                subscriber.overflowed = True
                subscriber.closed.set()

    # -- watches --

    async def save_watch(self, watch: Watch) -> None:
        if self._producer is not None:
            await self._producer.send_and_wait(topic_name(self.settings, "watches"),
                                               key=watch.id.encode(), value=encode(watch))
        self.watches[watch.id] = watch  # shown at once; the topic confirms it
        self.broadcast(sse("watches", {"changed": watch.id}))

    async def delete_watch(self, watch_id: str) -> None:
        if self._producer is not None:
            await self._producer.send_and_wait(topic_name(self.settings, "watches"),
                                               key=watch_id.encode(), value=None)
        self.watches.pop(watch_id, None)
        self.broadcast(sse("watches", {"changed": watch_id}))

    def start_backfill(self, watch: Watch) -> None:
        """Match the new watch against the stories in the dedup window (as the workers' API
        does), in a thread with its own loop, so the page's loop never waits for it."""
        def run() -> int:
            return asyncio.run(backfill(self.settings, watch))

        future = asyncio.ensure_future(asyncio.to_thread(run))
        self._backfills.add(future)
        future.add_done_callback(self._backfills.discard)


# ------------------------------------------------------------------- HTTP helpers ---

def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    return _json({"error": reason, **extra}, status)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, pages, API, events and errors alike (``on_response_prepare``)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith(("/api/", "/events")):
        response.headers.setdefault("Cache-Control", "no-store")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (404, 405, 413...) as JSON with a reason; a bug is a logged
    500 that says nothing more."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return _json({"error": reason}, exc.status, headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("board: %s %s failed", request.method, request.path)
        return _json({"error": "internal error"}, 500)


def _param(request: web.Request, name: str, limit: int = MAX_QUERY_PARAM_CHARS) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise web.HTTPBadRequest(text=f"{name}: at most {limit} characters")
    return value


def _number_param(request: web.Request, name: str) -> float | None:
    value = _param(request, name, 40)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: {value!r} is not a number (unix seconds)"
                                 ) from None
    if not math.isfinite(number):
        raise web.HTTPBadRequest(text=f"{name}: must be a finite number")
    return number


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = _param(request, name, 20)
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]+", value) or not low <= int(value) <= high:
        raise web.HTTPBadRequest(text=f"{name}: a whole number from {low} to {high}")
    return int(value)


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not value or len(value) > MAX_ID_CHARS:
        raise web.HTTPBadRequest(text=f"{name}: 1 to {MAX_ID_CHARS} characters")
    return value


def _refusal(board: Board, request: web.Request) -> web.Response | None:
    """401/403 unless the request carries the configured bearer token in its header."""
    if any(k.lower() in ("token", "access_token", "api_token") for k in request.query):
        return _error(400, "send the API token in the Authorization header, never in a URL")
    token = board.settings.api_token
    if not token:
        return _error(403, "write calls are disabled: set WIREWATCH_API_TOKEN for the board "
                           "(the workers' token)")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _json({"error": "missing or wrong API token"}, 401,
                     {"WWW-Authenticate": "Bearer"})
    return None


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length,
                                            text=f"body over {MAX_BODY_BYTES} bytes")
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, len(body),
                                            text=f"body over {MAX_BODY_BYTES} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return data


_POSITION = re.compile(r"^position (\d+): ")


def _watch_error(exc: WatchError, data: dict[str, Any]) -> web.Response:
    """A refused watch: the reason, the field it is about and, for a query that does not
    parse, the position in it (of the query as stored: stripped)."""
    message = str(exc)
    query = data.get("query")
    has_query = isinstance(query, str) and query.strip() != ""
    extra: dict[str, Any] = {}
    found = _POSITION.match(message)
    if found or message.startswith(("watch query", "query ")):
        extra["field"] = "query" if has_query else "name"
        if found:
            source = query if has_query else data.get("name")
            extra["position"] = int(found.group(1))
            extra["text"] = source.strip() if isinstance(source, str) else ""
    elif message.startswith(("webhook", "webhook URL")):
        extra["field"] = "webhook_url"
    elif message.startswith("rate limit"):
        extra["field"] = "rate_limit"
    elif message.startswith(("watch name", "a watch needs")):
        extra["field"] = "name"
    return _error(400, message, **extra)


def _watch_json(watch: Watch) -> dict[str, Any]:
    return asdict(watch)


def _watch_args(data: dict[str, Any]) -> tuple[object, object, object, object,
                                               dict[str, object]]:
    """(name, query, webhook_url, rate_limit, other settings) of a body; an empty query or
    webhook field is none (the name is the query; no webhook). Unknown fields are refused."""
    unknown = sorted(set(data) - WATCH_FIELDS)
    if unknown:
        raise WatchError(f"unknown field(s) {', '.join(map(repr, unknown))}; expected "
                         f"{', '.join(sorted(WATCH_FIELDS))}")
    if "name" not in data:
        raise WatchError('a watch needs a "name"')
    if data.get("backfill") is not None and not isinstance(data["backfill"], bool):
        raise WatchError('"backfill" must be true or false')
    query = data.get("query")
    if isinstance(query, str) and not query.strip():
        query = None
    webhook = data.get("webhook_url")
    options = {k: data[k] for k in WATCH_OPTIONS if k in data}
    return (data["name"], query, None if webhook == "" else webhook, data.get("rate_limit"),
            options)


def _made(name: object, query: object, webhook: object, rate_limit: object,
          options: dict[str, object], created_at: float | None = None) -> Watch:
    # make_watch is typed for the CLI's values; validate_watch inside it checks every type
    # and raises WatchError for anything else, as the workers' API relies on.
    return make_watch(name, query, webhook_url=webhook, rate_limit=rate_limit,  # type: ignore[arg-type]
                      created_at=created_at, **options)


async def _checked_watch(board: Board, data: dict[str, Any]) -> Watch:
    """The watch a body asks for. Editing one (same folded name) keeps its creation time and
    the settings the body does not mention."""
    name, query, webhook, rate_limit, options = _watch_args(data)
    existing = board.watches.get(watch_id_for(name)) if isinstance(name, str) else None
    if existing is not None:
        kept = {k: getattr(existing, k) for k in WATCH_OPTIONS if hasattr(existing, k)}
        options = {**kept, **options}
    watch = _made(name, query, webhook, rate_limit, options,
                  created_at=existing.created_at if existing else None)
    if watch.webhook_url:
        reason = await refusal_reason(watch.webhook_url, board.settings.webhook_allow)
        if reason:
            raise WatchError(f"webhook refused: {reason}")
    return watch


def watch_id_for(name: str) -> str:
    """The id ``make_watch`` gives a watch called ``name`` (an edit keeps its created_at)."""
    return stable_id("watch", normalize(name), length=12)


# ------------------------------------------------------------------------ handlers ---

def make_app(board: Board) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(security_headers)
    static = {name: (resources.files("board") / "static" / name).read_bytes()
              for name in STATIC_TYPES}

    def page(name: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=static[name], content_type=STATIC_TYPES[name],
                                charset="utf-8" if name != "favicon.svg" else None,
                                headers={"Cache-Control": "no-cache"})
        return handler

    async def alerts(request: web.Request) -> web.Response:
        kind = _param(request, "kind", 20)
        if kind is not None and not KIND.fullmatch(kind):
            raise web.HTTPBadRequest(text=f"kind: a lower-case word such as "
                                          f"{', '.join(ALERT_KINDS)}")
        found = board.window.alerts(
            watch=_param(request, "watch", MAX_ID_CHARS), kind=kind,
            since=_number_param(request, "since"), until=_number_param(request, "until"),
            text=_param(request, "q"), before=_int_param(request, "before", 0, 0, 2**53) or None,
            limit=_int_param(request, "limit", 100, 1, 500))
        return _json({"alerts": found, "seq": board.window.seq, "epoch": board.epoch,
                      "ready": board.ready})

    async def alert(request: web.Request) -> web.Response:
        alert_id = _path_id(request, "alert_id")
        card = board.window.card(alert_id)
        if card is None:
            return _error(404, f"alert {alert_id} is not in the board's window")
        return _json(card)

    async def story(request: web.Request) -> web.Response:
        story_id = _path_id(request, "story_id")
        found = board.window.story(story_id)
        if found is None:
            return _error(404, f"story {story_id} is not in the board's window")
        return _json(found)

    async def watches(request: web.Request) -> web.Response:
        name = _param(request, "q")
        limit = _int_param(request, "limit", 500, 1, 5000)
        hits = board.window.watch_hits()
        listed = []
        needle = name.casefold() if name else None
        for watch in board.watches.values():
            if needle and needle not in watch.name.casefold():
                continue
            item = _watch_json(watch)
            hit = hits.get(watch.id, {})
            item.update(alerts=hit.get("alerts", 0), revisions=hit.get("revisions", 0),
                        last_at=hit.get("last_at"))
            listed.append(item)
        listed.sort(key=lambda w: (-w["alerts"], w["name"].casefold()))
        return _json({"watches": listed[:limit], "total": len(listed),
                      "writable": bool(board.settings.api_token)})

    async def add_watch(request: web.Request) -> web.Response:
        refused = _refusal(board, request)
        if refused is not None:
            return refused
        data = await _json_body(request)
        try:
            watch = await _checked_watch(board, data)
        except WatchError as exc:
            return _watch_error(exc, data)
        await board.save_watch(watch)
        reply = _watch_json(watch)
        if data.get("backfill") is True:
            board.start_backfill(watch)
            reply["backfill"] = "started"
        return _json(reply, 201)

    async def check_watch_body(request: web.Request) -> web.Response:
        data = await _json_body(request)
        try:
            _made(*_watch_args(data))
        except WatchError as exc:
            return _watch_error(exc, data)
        return _json({"ok": True})

    async def remove_watch(request: web.Request) -> web.Response:
        refused = _refusal(board, request)
        if refused is not None:
            return refused
        watch_id = _path_id(request, "watch_id")
        if watch_id not in board.watches:
            return _error(404, f"no watch {watch_id}")
        await board.delete_watch(watch_id)
        return _json({"removed": watch_id})

    async def health(request: web.Request) -> web.Response:
        return _json(board.health)

    async def status(request: web.Request) -> web.Response:
        return _json({"ready": board.ready, "epoch": board.epoch, "window": board.window.stats(),
                      "watches": len(board.watches), "clients": len(board.subscribers),
                      "refused_watches": board.refused_watches,
                      "writable": bool(board.settings.api_token)})

    async def healthz(request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def events(request: web.Request) -> web.StreamResponse:
        after = request.headers.get("Last-Event-ID") or _param(request, "after", 60)
        replay_from: int | None = None
        if after:
            epoch, _, seq = after.partition(".")
            if not re.fullmatch(r"[0-9]{1,16}", seq):
                if "Last-Event-ID" not in request.headers:
                    raise web.HTTPBadRequest(text="after: EPOCH.SEQ, as the events' ids")
            elif epoch == board.epoch:
                replay_from = int(seq)
        if len(board.subscribers) >= board.conf.max_clients:
            return _json({"error": "too many open pages; retry later"}, 503,
                         {"Retry-After": "5"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        subscriber = Subscriber()
        board.subscribers.add(subscriber)
        try:
            await response.write(b"retry: 2000\n\n" + sse(
                "hello", {"epoch": board.epoch, "seq": board.window.seq, "ready": board.ready,
                          "writable": bool(board.settings.api_token)}))
            if replay_from is not None and board.ready:
                for card in board.window.changed_after(replay_from):
                    await response.write(sse("alert", card, f"{board.epoch}.{card['seq']}"))
            await response.write(sse("health", board.health))
            closed = asyncio.ensure_future(subscriber.closed.wait())
            try:
                while not subscriber.closed.is_set():
                    getter = asyncio.ensure_future(subscriber.queue.get())
                    done, _ = await asyncio.wait({getter, closed}, timeout=PING_SECONDS,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        chunk = getter.result()
                        while not subscriber.queue.empty() and len(chunk) < 256 * 1024:
                            chunk += subscriber.queue.get_nowait()
                        await response.write(chunk)
                    else:
                        getter.cancel()
                        if not done:
                            await response.write(b": ping\n\n")
            finally:
                closed.cancel()
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            board.subscribers.discard(subscriber)
        return response

    async def on_startup(app: web.Application) -> None:
        await board.start()

    async def on_shutdown(app: web.Application) -> None:
        for subscriber in list(board.subscribers):
            subscriber.closed.set()

    async def on_cleanup(app: web.Application) -> None:
        await board.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.router.add_get("/", page("index.html"))
    app.router.add_get("/static/board.css", page("board.css"))
    app.router.add_get("/static/board.js", page("board.js"))
    app.router.add_get("/favicon.svg", page("favicon.svg"))
    app.router.add_get("/events", events)
    app.router.add_get("/api/alerts", alerts)
    app.router.add_get("/api/alerts/{alert_id}", alert)
    app.router.add_get("/api/stories/{story_id}", story)
    app.router.add_get("/api/watches", watches)
    app.router.add_post("/api/watches", add_watch)
    app.router.add_post("/api/watches/check", check_watch_body)
    app.router.add_delete("/api/watches/{watch_id}", remove_watch)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/status", status)
    app.router.add_get("/healthz", healthz)
    return app


def run_board(settings: Settings, conf: BoardSettings, *,
              announce: Callable[[str], None] = print) -> None:
    """Serve the board until Ctrl-C or SIGTERM."""
    board = Board(settings, conf)
    app = make_app(board)
    url = f"http://{conf.host if conf.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{conf.port}/"

    def printed(_: object) -> None:
        announce(f"board: {url}  (window {conf.window_hours:g} h, at most {conf.max_alerts:,} "
                 f"alerts and {conf.max_articles:,} story articles; Ctrl-C stops)")

    web.run_app(app, host=conf.host, port=conf.port, print=printed, access_log=None,
                handle_signals=True, shutdown_timeout=5.0)

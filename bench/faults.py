"""The fault suite (issue 17): the real broker and real workers, one fault per scenario.

    PYTHONPATH=. .venv/bin/python bench/faults.py                    # the full run, 4-7 min
    PYTHONPATH=. .venv/bin/python bench/faults.py --short            # each scenario small, 3-4 min
    PYTHONPATH=. .venv/bin/python bench/faults.py --only broker_kill,hostile --out faults.json

Each scenario runs under its own topic prefix and consumer group (app id), with workers as
separate processes (``wirewatch worker``), on one embedded Apache Kafka broker this script
starts (or ``--broker kafka://host:port``); ``broker_kill`` always starts a broker of its own,
with a persistent data folder in a temporary directory. Good articles are BBC articles
(``../shared/data/bbc_news_2225.jsonl.gz``, read in place) with distinct bodies and ids
``<scenario tag>-<n>-<bbc id>`` (past the distinct bodies, ``Update <k>:`` prefixes keep them
distinct), so dedup drops none of them as an exact copy: every good article must reach
``news.stories``. Three watches ("Labour", "government", "market") hit many of them, and the
per-watch rate limit is out of reach (``WIREWATCH_ALERT_RATE_LIMIT``), so every revision of
every alert is on ``news.alerts``.

Scenarios (``--only`` takes these names):

* ``broker_kill``: one worker; articles published at a steady rate; once stories flow, the
  broker is killed with SIGKILL, and restarted on the same data folder (so the same ports):
  the worker must reconnect to the same URL;
* ``worker_kill``: one worker, killed with SIGKILL at random moments (seeded: 0.5-4 s after
  the (re)started worker's first progress) while articles are published at a steady rate,
  and restarted each time (3 kills; 1 with ``--short``);
* ``worker_takeover``: two workers of one group; the one running dedup (the stage of the
  one-partition ``news.tagged``) is killed mid-stream and not restarted: the survivor takes
  its partitions and tables over;
* ``hostile``: 300 hostile raw messages (``bench/fault_load.py``: random bytes, truncated and
  10,000-deep JSON, a 5 MB text, 900 KB ids and fields, NUL bytes, lone surrogate escapes,
  wrong types for every field, HTML with 200,000 attributes on one element, deeply nested
  HTML...), then good articles;
* ``watches``: 150+ pathological watch definitions over ``POST /watches/`` and ``wirewatch
  watch add`` (every limit, control characters, bad webhooks, absurd rate limits, huge and
  broken bodies, no token), a few garbage records written straight to ``news.watches``, then
  good articles;
* ``http_load``: 1,000 articles through an idle worker, then 1,000 more while 200 keep-alive
  clients (``/metrics``, ``/watches/``, ``/healthz`` back to back) and 200 slow-loris sockets
  (a request line, then a header byte a second, never finished) load its web port for at
  least 20 s (from a separate process).

What the table shows, per scenario:

* published: good articles the broker acknowledged; reached: how many distinct ones are on
  ``news.stories``; lost: published and never there;
* dup rev: extra copies of an ``(alert_id, revision)`` pair on ``news.alerts``; opened 2x:
  alert ids with more than one ``kind: "opened"`` record;
* restarts: workers started again after a kill, or after an exit of their own (a crash);
* recovery s, as "resume / backlog", the worst over the scenario's faults: *resume* is from
  the fault (the SIGKILL) until the suite reads the first record on ``news.stories`` that was
  made after it (its Kafka timestamp is later: not one a dying worker sent just before);
  *backlog* is from the fault until every good article published before the fault and not
  yet on ``news.stories`` then is there (0 when none was waiting);
* HTTP 5xx: responses with a 5xx status the suite's HTTP clients got (watches, http_load);
* max RSS: the largest VmRSS of any worker process, sampled every 0.5 s.

Pass rule, per scenario: 0 lost (every good article published reached ``news.stories``),
0 duplicate revisions, 0 alerts opened twice, 0 HTTP 5xx, 0 ``internal_error`` dead letters,
no worker that exited on its own, and the scenario's own checks: ``hostile``: every hostile
message dead-lettered (the few marked "bounded", such as a 900 KB title, may instead be
accepted cut to limits: title 500 characters, text 200,000, id 1,024 without control
characters, URL 2,048, source 500); ``watches``: every definition accepted or refused as it
must be (HTTP 201 / 4xx, CLI exit 0 / 1, or 2 for click's own type errors; never a
traceback), the worker's watch list holding the accepted ones and none of the refused;
``http_load``: loaded throughput >= 50 % of unloaded (a full run's target: ``--short``
reports the ratio and holds only that the load was served). Every wait is bounded
(``--scenario-timeout``), so a payload that stalls a worker makes its scenario fail, not
hang; ``--max-minutes`` bounds the whole run. The exit status is 1 when any scenario fails.

``--out`` writes every number (and each check with its detail) as JSON;
``tests/integration/test_faults.py`` runs ``--short`` on the test session's broker and
asserts them. On a failure the workers' logs stay in the temporary folder the table names.

Sizes, full (short): broker_kill 600 articles at 30/s (100 at 20/s); worker_kill 1,200 at
20/s (120 at 15/s); worker_takeover 600 at 20/s (100 at 15/s); hostile 300 + 200 good
(30 + 60); watches 150+ cases + 150 good (20 + 40); http_load 50 warm-up, then 1,000 + 1,000
with 200 clients and 200 slow-loris for >= 20 s (20 + 100 + 100, 20 + 20 for >= 4 s).
Workers of worker_kill and worker_takeover run with ``WIREWATCH_SESSION_TIMEOUT_SECONDS=6``
(the broker's minimum), so a dead member leaves the group quickly; the others keep the
default (30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams`, `agents`, `bench` importable
    sys.path.insert(0, str(REPO))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from agents.watch.store import put_watch  # noqa: E402
from bench.fault_load import BOUNDS, Hostile, WatchCase, hostile_payloads, watch_cases  # noqa: E402
from bench.http_load import bbc_payload  # noqa: E402
from streams.broker import EmbeddedKafka  # noqa: E402
from streams.client import topic_partitions  # noqa: E402
from streams.processes import spawn_worker, wait_http  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.text import normalize  # noqa: E402
from streams.topics import bootstrap_servers, ensure_topics, topic_name  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"
SCENARIOS = ("broker_kill", "worker_kill", "worker_takeover", "hostile", "watches", "http_load")
WATCHES = (("Labour", None), ("government", None), ("market", None))
ALLOW_HOST = "127.0.0.2"  # the one private address webhooks may target in the watches scenario
THROUGHPUT_TARGET = 0.5


# The suite's own Kafka clients retry through a broker outage: their connection errors are
# expected, and the workers' logs have the workers' own.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- sizes ---

@dataclass(frozen=True)
class Sizes:
    broker_articles: int
    broker_rate: float
    kill_articles: int
    kill_rate: float
    kills: int
    takeover_articles: int
    takeover_rate: float
    hostile: int
    hostile_good: int
    watches: int | None  # None: every case bench/fault_load.py makes (150+)
    watch_good: int
    http_articles: int
    http_warmup: int
    http_clients: int
    http_loris: int
    http_seconds: float
    scenario_timeout: float


FULL = Sizes(broker_articles=600, broker_rate=30, kill_articles=1200, kill_rate=20, kills=3,
             takeover_articles=600, takeover_rate=20, hostile=300, hostile_good=200,
             watches=None, watch_good=150, http_articles=1000, http_warmup=50, http_clients=200,
             http_loris=200, http_seconds=20, scenario_timeout=480)
SHORT = Sizes(broker_articles=100, broker_rate=20, kill_articles=120, kill_rate=15, kills=1,
              takeover_articles=100, takeover_rate=15, hostile=30, hostile_good=60, watches=20,
              watch_good=40, http_articles=100, http_warmup=20, http_clients=20, http_loris=20,
              http_seconds=4, scenario_timeout=100)


# ----------------------------------------------------------------------- articles ---

class Articles:
    """BBC articles with distinct bodies, handed out as raw JSON with ids that are unique per
    scenario (``<tag>-<n>-<bbc id>``); past the distinct bodies each loop's text starts with
    ``Update <k>:`` (a near duplicate of the first: still on news.stories)."""

    def __init__(self, path: Path = DATA) -> None:
        self.rows: list[dict[str, Any]] = []
        bodies: set[str] = set()
        with gzip.open(path, "rb") as handle:
            for line in handle:
                row = orjson.loads(line)
                body = normalize(row["text"])
                if body not in bodies:
                    bodies.add(body)
                    self.rows.append(row)

    def take(self, tag: str, start: int, n: int) -> list[tuple[bytes, bytes]]:
        pairs = []
        for i in range(start, start + n):
            loop, index = divmod(i, len(self.rows))
            row = self.rows[index]
            art_id, payload = bbc_payload(tag, i, loop, row)
            pairs.append((art_id.encode(), payload))
        return pairs


# ---------------------------------------------------------------------- processes ---

#: Every child process and broker this script started, for the clean-up on any exit.
CHILDREN: list[subprocess.Popen[bytes]] = []
BROKERS: list[EmbeddedKafka] = []


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def kill_process(process: subprocess.Popen[bytes], *, grace: float = 0.0) -> None:
    """SIGTERM and ``grace`` seconds, or straight SIGKILL; only ever this process."""
    if process.poll() is None:
        if grace:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def cleanup_all() -> None:
    for process in CHILDREN:
        kill_process(process)
    for broker in BROKERS:
        with contextlib.suppress(Exception):
            broker.stop(timeout=10)


def run_async(coro: Any, timeout: float) -> Any:
    """Run a coroutine from the main thread, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await consumer.stop()


async def publish_pairs(bootstrap: str, topic: str, pairs: list[tuple[bytes | None, bytes | None]]
                        ) -> list[tuple[int, int]]:
    """Send every pair and wait for the broker's acknowledgement: (partition, offset) each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=16 * 1024 * 1024, request_timeout_ms=30000)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in pairs]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [tp for t in topics for tp in await topic_partitions(consumer, t)]
        return {(tp.topic, tp.partition): off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await _stop_consumer(consumer)


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        info = (await admin.describe_consumer_groups([group]))[0].to_object()["groups"][0]
        return info["state"], len(info["members"])
    finally:
        await admin.close()


# ---------------------------------------------------------------------------- tap ---

_HOSTILE_ID = re.compile(r"^hostile-\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Tap(threading.Thread):
    """Follows news.stories, news.alerts and news.deadletter from their start, in a thread of
    its own, and records what the scenario's accounting needs, with the (monotonic) time each
    article id was first seen on news.stories. Survives a broker restart: on any error it
    opens a new consumer at the positions it had reached."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        super().__init__(daemon=True, name="tap")
        self.bootstrap, self.topics = bootstrap, topics
        self.kind_of = {name: kind for kind, name in topics.items()}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.positions: dict[tuple[str, int], int] = {}
        self.first_seen: dict[str, float] = {}  # monotonic, when the tap read it
        self.seen_wall: dict[str, float] = {}  # the same moment, wall clock
        self.created: dict[str, float] = {}  # the first copy's Kafka timestamp (wall clock)
        self.story_copies: Counter[str] = Counter()
        self.leaks: dict[str, dict[str, Any]] = {}  # stories records of non-good articles
        self.alerts: list[tuple[str, int, str, str]] = []  # alert_id, revision, kind, article
        self.alert_at: list[str] = []  # where each is: "partition@offset, Kafka time"
        self.dead: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.good: set[str] = set()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        while not self.stopping.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
            try:
                await asyncio.wait_for(consumer.start(), 30)
                tps = [tp for name in self.topics.values()
                       for tp in await topic_partitions(consumer, name)]
                consumer.assign(tps)
                for tp in tps:
                    at = self.positions.get((tp.topic, tp.partition))
                    if at is None:
                        await consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, at)
                while not self.stopping.is_set():
                    batches = await consumer.getmany(timeout_ms=200)
                    now, wall = time.monotonic(), time.time()
                    with self.lock:
                        for tp, messages in batches.items():
                            for msg in messages:
                                self._record(self.kind_of[tp.topic], msg.value, now, wall,
                                             msg.timestamp / 1000)
                                if self.kind_of[tp.topic] == "alerts":
                                    self.alert_at.append(
                                        f"[{msg.partition}]@{msg.offset} " + time.strftime(
                                            "%H:%M:%S", time.localtime(msg.timestamp / 1000))
                                        + f".{msg.timestamp % 1000:03d}")
                            self.positions[(tp.topic, tp.partition)] = messages[-1].offset + 1
            except Exception as exc:  # a broker restart, mostly: reopen where we were
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
            finally:
                await _stop_consumer(consumer)

    def _record(self, kind: str, value: bytes | None, now: float, wall: float,
                created: float) -> None:
        if value is None:
            return
        record = orjson.loads(value)
        if kind == "stories":
            art_id = record.get("id", "")
            self.story_copies[art_id] += 1
            if art_id not in self.first_seen:
                self.first_seen[art_id], self.seen_wall[art_id] = now, wall
                self.created[art_id] = created
            if art_id not in self.good and art_id not in self.leaks:
                self.leaks[art_id] = {f: len(record.get(f) or "") for f in BOUNDS}
                self.leaks[art_id]["id_control"] = bool(_CONTROL.search(art_id))
        elif kind == "alerts":
            self.alerts.append((record["alert_id"], record["revision"], record["kind"],
                                record.get("article_id", "")))
        else:
            self.dead.append({"key": record.get("key"), "stage": record.get("stage"),
                              "reason": record.get("reason"), "error": record.get("error", "")[:300],
                              "topic": record.get("topic"), "partition": record.get("partition"),
                              "offset": record.get("offset"), "size": record.get("payload_size")})

    def seen(self, ids: set[str]) -> int:
        with self.lock:
            return len(ids & self.first_seen.keys())

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the tap has read everything on its topics now; False on time-out."""
        try:
            ends = run_async(end_offsets(self.bootstrap, list(self.topics.values())), 30)
        except Exception as exc:
            self.errors.append(f"drain: {type(exc).__name__}: {exc}")
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(self.positions.get(tp, 0) >= end for tp, end in ends.items()):
                    return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


# ---------------------------------------------------------------------- publisher ---

class Publisher(threading.Thread):
    """Publishes (key, value) pairs at ``rate`` per second in batches of 5, in a thread of its
    own, through any broker outage: a batch that fails is sent again (same ids: a repeat
    that got through twice is an exact copy, which dedup drops) by a new producer, until the
    broker acknowledges it or ``deadline`` passes. Records when each id was first sent
    (monotonic) and which ids the broker acknowledged."""

    def __init__(self, bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]],
                 rate: float, deadline: float) -> None:
        super().__init__(daemon=True, name="publisher")
        self.bootstrap, self.topic, self.pairs, self.rate = bootstrap, topic, pairs, rate
        self.deadline = deadline
        self.sent_at: dict[str, float] = {}
        self.acked: set[str] = set()
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        producer: AIOKafkaProducer | None = None
        start = time.monotonic()
        batch = 5
        try:
            for i in range(0, len(self.pairs), batch):
                wait = start + i / self.rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                chunk = self.pairs[i:i + batch]
                while not self.stopping.is_set() and time.monotonic() < self.deadline:
                    try:
                        if producer is None:
                            producer = AIOKafkaProducer(
                                bootstrap_servers=self.bootstrap, acks="all", linger_ms=2,
                                request_timeout_ms=10000, max_request_size=16 * 1024 * 1024)
                            await asyncio.wait_for(producer.start(), 15)
                        now = time.time()
                        with self.lock:
                            for key, _ in chunk:
                                self.sent_at.setdefault(key.decode(), now)
                        futures = [await producer.send(self.topic, key=k, value=v)
                                   for k, v in chunk]
                        await asyncio.wait_for(asyncio.gather(*futures), 20)
                        with self.lock:
                            self.acked.update(k.decode() for k, _ in chunk)
                        break
                    except Exception as exc:
                        self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}")
                        if producer is not None:
                            with contextlib.suppress(Exception):
                                await asyncio.wait_for(producer.stop(), 10)
                        producer = None
                        await asyncio.sleep(0.5)
                if self.stopping.is_set() or time.monotonic() >= self.deadline:
                    return
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 10)

    def progress(self) -> int:
        with self.lock:
            return len(self.acked)


# ----------------------------------------------------------------------- scenario ---

class ScenarioError(Exception):
    """The scenario could not go on (a worker that never became ready, a time-out)."""


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    killed: bool = False  # by the suite (SIGKILL on purpose)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Check:
    ok: bool
    detail: str


class Scenario:
    """One scenario's topics, workers, tap, samplers and accounting."""

    def __init__(self, name: str, args: argparse.Namespace, broker_url: str, tmp: Path,
                 **env: str) -> None:
        self.name, self.args, self.tmp = name, args, tmp / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.tag = f"f{uuid.uuid4().hex[:6]}"
        self.prefix = f"{self.tag}.{name}."
        self.env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}",
                    "WIREWATCH_BROKER_URL": broker_url, "WIREWATCH_TOPIC_PREFIX": self.prefix,
                    "WIREWATCH_APP_ID": f"faults-{name}", "WIREWATCH_LOG_LEVEL": "info",
                    "WIREWATCH_ALERT_RATE_LIMIT": str(10**9),
                    "WIREWATCH_API_TOKEN": uuid.uuid4().hex, **env}
        self.settings = load_settings(self.env)
        self.bootstrap = bootstrap_servers(self.settings)
        self.deadline = time.monotonic() + args.sizes.scenario_timeout
        self.started = time.monotonic()
        self.workers: list[Worker] = []
        self.spawned = 0
        self.restarts = 0
        self.exits: list[dict[str, Any]] = []  # workers that exited on their own
        self.faults: list[float] = []  # wall clock (time.time()) of each fault
        self.good_sent: dict[str, float] = {}  # wall clock of each good article's first send
        self.good: set[str] = set()  # acknowledged by the broker
        self.http_5xx: int | None = None
        self.checks: dict[str, Check] = {}
        self.details: dict[str, Any] = {}
        self.max_rss = 0
        self.next_article = 0
        self.tap: Tap | None = None
        self.publishers: list[Publisher] = []
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True, name="rss")

    # --- set-up

    def topic(self, key: str) -> str:
        return topic_name(self.settings, key)

    def open(self, watches: bool = True) -> None:
        ensure_topics(self.settings)
        if watches:
            for name, query in WATCHES:
                put_watch(self.settings, name, query)
        self.tap = Tap(self.bootstrap, {k: self.topic(k) for k in ("stories", "alerts",
                                                                   "deadletter")})
        self.tap.start()
        self._sampler.start()

    def _sample(self) -> None:
        while not self._sampling.wait(0.5):
            for worker in list(self.workers):
                self.max_rss = max(self.max_rss, rss_bytes(worker.pid))

    def start_worker(self, ready_timeout: float = 120.0) -> Worker:
        self.spawned += 1
        log_path = self.tmp / f"worker{self.spawned}.log"
        process, port = spawn_worker(self.env, log_path=log_path)
        CHILDREN.append(process)
        worker = Worker(process, port, log_path)
        self.workers.append(worker)
        bound = min(ready_timeout, self.left())
        if not wait_http(f"http://127.0.0.1:{port}/readyz", bound):
            raise ScenarioError(f"worker :{port} not ready within {bound:.0f} s:\n" + worker.tail())
        return worker

    def kill_worker(self, worker: Worker) -> float:
        """SIGKILL; the moment of the fault (wall clock)."""
        worker.killed = True
        os.kill(worker.pid, signal.SIGKILL)
        at = time.time()
        worker.process.wait(10)
        self.workers.remove(worker)
        return at

    def restart(self) -> Worker:
        self.restarts += 1
        return self.start_worker()

    def supervise(self) -> None:
        """A worker that exited on its own is recorded and started again (as a supervisor
        such as Docker's restart policy would)."""
        for worker in list(self.workers):
            code = worker.process.poll()
            if code is not None and not worker.killed:
                self.workers.remove(worker)
                self.exits.append({"pid": worker.pid, "port": worker.port, "code": code,
                                   "at_s": round(time.monotonic() - self.started, 1),
                                   "log": str(worker.log_path), "tail": worker.tail(1500)})
                log(f"  {self.name}: worker {worker.pid} exited with {code}; restarting it")
                self.restart()

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def wait(self, done: Callable[[], bool], what: str, *, timeout: float | None = None,
             raise_on_timeout: bool = False) -> bool:
        """Poll ``done`` (supervising the workers) until it holds or the time is up."""
        end = min(self.deadline, time.monotonic() + timeout) if timeout else self.deadline
        while time.monotonic() < end:
            self.supervise()
            if done():
                return True
            time.sleep(0.25)
        if done():
            return True
        log(f"  {self.name}: timed out waiting for {what}")
        self.details.setdefault("timeouts", []).append(what)
        self.details.setdefault("stall", self.diagnose())
        if raise_on_timeout:
            raise ScenarioError(f"timed out waiting for {what}")
        return False

    # --- articles

    def articles(self, n: int) -> list[tuple[bytes, bytes]]:
        pairs = self.args.articles.take(self.tag, self.next_article, n)
        self.next_article += n
        return pairs

    def publish_now(self, pairs: list[tuple[bytes, bytes]]) -> float:
        """Publish good articles at once; returns when the first was sent (monotonic)."""
        ids = [k.decode() for k, _ in pairs]
        assert self.tap is not None
        with self.tap.lock:
            self.tap.good.update(ids)  # before they can reach news.stories
        t0, wall = time.monotonic(), time.time()
        for art_id in ids:
            self.good_sent.setdefault(art_id, wall)
        run_async(publish_pairs(self.bootstrap, self.topic("raw"), list(pairs)), 120)
        self.good.update(ids)
        return t0

    def publisher(self, pairs: list[tuple[bytes, bytes]], rate: float) -> Publisher:
        """A steady publisher of good articles to news.raw, started."""
        publisher = Publisher(self.bootstrap, self.topic("raw"), pairs, rate, self.deadline)
        self.publishers.append(publisher)
        publisher.start()
        return publisher

    def adopt(self, publisher: Publisher) -> None:
        """Take a publisher's record of what it sent and what the broker acknowledged."""
        with publisher.lock:
            for key, at in publisher.sent_at.items():
                self.good_sent.setdefault(key, at)
            self.good.update(publisher.acked)
        assert self.tap is not None
        with self.tap.lock:
            self.tap.good.update(self.good)

    def stories_of(self, ids: set[str]) -> int:
        assert self.tap is not None
        return self.tap.seen(ids)

    def wait_stories(self, ids: set[str], what: str = "every good article on news.stories",
                     timeout: float | None = None) -> bool:
        return self.wait(lambda: self.stories_of(ids) >= len(ids), what, timeout=timeout)

    def metric(self, worker: Worker, name: str, **labels: str) -> float:
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics",
                                        timeout=10) as resp:
                text = resp.read().decode()
        except OSError:
            return float("nan")
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            if head == (f"{name}{{{want}}}" if want else name):
                return float(value)
        return 0.0

    def diagnose(self) -> list[dict[str, Any]]:
        """What each live worker says about itself when a wait times out: /readyz, its
        non-zero stage counters and consumer lag, its CPU seconds and its log's last lines."""
        out = []
        for worker in self.workers:
            entry: dict[str, Any] = {"pid": worker.pid, "port": worker.port,
                                     "cpu_s": round(cpu_seconds(worker.pid), 1)}
            for page in ("readyz", "metrics"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/{page}",
                                                timeout=10) as resp:
                        text = resp.read().decode()
                except urllib.error.HTTPError as exc:  # /readyz answers 503 when not ready
                    text = exc.read().decode(errors="replace")
                except OSError as exc:
                    text = f"unavailable: {exc}"
                if page == "metrics":  # lag first: it says which partitions are stuck
                    lines = [line for line in text.splitlines() if not line.endswith(" 0.0")]
                    text = "\n".join(
                        [line for line in lines
                         if line.startswith("wirewatch_consumer_lag_messages")]
                        + [line for line in lines if line.startswith("wirewatch_articles_total")])
                entry[page] = text[:3000]
            entry["log_tail"] = worker.tail(1500)
            out.append(entry)
        return out

    # --- results

    def close(self, *, grace: float = 15.0) -> None:
        """Stop the workers (SIGTERM, then SIGKILL after ``grace`` s) and the RSS sampler;
        the tap goes on until ``result``."""
        self._sampling.set()
        for publisher in self.publishers:
            publisher.stopping.set()
        for worker in self.workers:
            kill_process(worker.process, grace=grace)

    def recovery(self) -> tuple[float | None, float | None]:
        """(resume, backlog) seconds, the worst over the faults (see the module docstring)."""
        if not self.faults or self.tap is None:
            return None, None
        with self.tap.lock:
            seen = {i: t for i, t in self.tap.seen_wall.items() if i in self.good}
            created = dict(self.tap.created)
        resumes, backlogs = [], []
        for fault in self.faults:
            # Records made after the fault (not ones a dying worker sent just before it).
            after = [seen[i] for i in seen if created[i] > fault]
            if after:
                resumes.append(min(after) - fault)
            waiting = [i for i, sent in self.good_sent.items() if sent < fault and i in self.good
                       and not (i in created and created[i] <= fault)]
            if any(i not in seen for i in waiting):
                backlogs.append(float("inf"))
            else:
                backlogs.append(max([seen[i] - fault for i in waiting] + [0.0]))
        return (max(resumes) if resumes else None), (max(backlogs) if backlogs else None)

    def result(self, error: str | None) -> dict[str, Any]:
        tap = self.tap
        assert tap is not None
        drained = tap.drain()
        tap.stop()
        with tap.lock:
            seen = set(tap.first_seen)
            pairs = Counter((a, r) for a, r, _, _ in tap.alerts)
            content: dict[tuple[str, int], set[tuple[str, str]]] = {}
            for a, r, kind, art in tap.alerts:
                content.setdefault((a, r), set()).add((kind, art))
            forks = {f"{a} r{r}": sorted(v) for (a, r), v in content.items() if len(v) > 1}
            opened = Counter(a for a, _, kind, _ in tap.alerts if kind == "opened")
            repeated: dict[str, list[str]] = {}
            for (a, r, kind, art), at in zip(tap.alerts, tap.alert_at, strict=True):
                if pairs[(a, r)] > 1:
                    repeated.setdefault(f"{a} r{r} {kind} {art}", []).append(at)
            dead = list(tap.dead)
            copies = sum(n - 1 for i, n in tap.story_copies.items() if i in self.good and n > 1)
            alerts = len(tap.alerts)
        # Copies with one Kafka timestamp are one record the producer wrote twice (a retry
        # after a lost acknowledgement); a later timestamp is the stage sending it again.
        repeat_causes = Counter(
            "producer retry (same Kafka timestamp)" if len({at.split(" ", 1)[1] for at in ats}) == 1
            else "sent again by the stage (later timestamp)" for ats in repeated.values())
        lost = sorted(self.good - seen)
        internal = [d for d in dead if d["reason"] == "internal_error"]
        resume, backlog = self.recovery()
        common = {
            "lost": Check(not lost, f"{len(lost)} lost" + (f", e.g. {lost[:5]}" if lost else "")),
            "duplicate_revisions": Check(sum(n - 1 for n in pairs.values()) == 0,
                                         f"{sum(n - 1 for n in pairs.values())} extra copies"),
            "opened_twice": Check(not [a for a, n in opened.items() if n > 1],
                                  f"{sum(1 for n in opened.values() if n > 1)} alert ids"),
            "internal_error": Check(not internal, f"{len(internal)} internal_error dead letters"
                                    + (f": {internal[:3]}" if internal else "")),
            "no_crash": Check(not self.exits, f"{len(self.exits)} worker exits of their own"),
        }
        if self.http_5xx is not None:
            common["http_5xx"] = Check(self.http_5xx == 0, f"{self.http_5xx} responses 5xx")
        if error:
            common["completed"] = Check(False, error)
        checks = {**common, **self.checks}
        return {
            "scenario": self.name, "published": len(self.good),
            "reached_stories": len(self.good & seen), "lost": len(lost),
            "duplicate_revisions": sum(n - 1 for n in pairs.values()),
            "forked_revisions": len(forks), "opened_twice": sum(1 for n in opened.values() if n > 1),
            "alerts": alerts, "story_copies": copies, "worker_restarts": self.restarts,
            "unexpected_exits": self.exits, "faults": len(self.faults),
            "resume_s": _round(resume), "recovery_s": _round(backlog),
            "http_5xx": self.http_5xx, "max_rss_mb": round(self.max_rss / 2**20, 1),
            "internal_errors": len(internal),
            "dead_letters": dict(Counter(f"{d['stage']}:{d['reason']}" for d in dead)),
            "seconds": round(time.monotonic() - self.started, 1),
            "checks": {k: {"ok": c.ok, "detail": c.detail} for k, c in checks.items()},
            "pass": all(c.ok for c in checks.values()),
            "details": {**self.details, "tap_errors": tap.errors[-5:], "tap_drained": drained,
                        "forks": dict(list(forks.items())[:5]), "lost_ids": lost[:20],
                        "repeated_alerts": dict(list(repeated.items())[:10]),
                        "repeat_causes": dict(repeat_causes),
                        "prefix": self.prefix, "logs": str(self.tmp)},
        }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return value if value == float("inf") else round(value, 1)


# ---------------------------------------------------------------------- scenarios ---

def _await_flow(sc: Scenario, publisher: Publisher, at_least: int) -> None:
    """Until ``at_least`` of the articles the publisher has had acknowledged are on
    news.stories (mid-stream)."""
    def flowing() -> bool:
        sc.adopt(publisher)
        return sc.stories_of(sc.good) >= at_least
    sc.wait(flowing, f"{at_least} articles on news.stories", raise_on_timeout=True)


def _finish_stream(sc: Scenario, publisher: Publisher) -> None:
    """Let the publisher finish, then wait for every acknowledged article on news.stories."""
    sc.wait(lambda: not publisher.is_alive(), "the publisher to finish")
    publisher.stopping.set()
    publisher.join(15)
    sc.adopt(publisher)
    sc.details["publish_failures"] = publisher.failures[:20]
    sc.details["unacknowledged"] = len(publisher.pairs) - len(publisher.acked)
    sc.checks["all_published"] = Check(len(publisher.acked) == len(publisher.pairs),
                                       f"{len(publisher.acked)} of {len(publisher.pairs)} "
                                       "acknowledged by the broker")
    sc.wait_stories(sc.good)


def scenario_broker_kill(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sz = args.sizes
    data_dir = tmp / "broker_kill-kafka"
    settings = load_settings()
    broker = EmbeddedKafka.start(settings, data_dir=data_dir)
    BROKERS.append(broker)
    sc = Scenario("broker_kill", args, broker.url, tmp)
    error = None
    try:
        sc.open()
        sc.start_worker()
        pairs = sc.articles(sz.broker_articles)
        publisher = sc.publisher(pairs, sz.broker_rate)
        _await_flow(sc, publisher, max(5, len(pairs) // 5))
        log(f"  broker_kill: SIGKILL to the broker (pid {broker.process.pid}, port {broker.port})")
        os.kill(broker.process.pid, signal.SIGKILL)
        sc.faults.append(time.time())
        broker.process.wait(10)
        time.sleep(args.broker_down)
        restarted = EmbeddedKafka.start(settings, data_dir=data_dir)
        BROKERS.append(restarted)
        sc.details["broker_restart_s"] = round(time.time() - sc.faults[0], 1)
        sc.details["ports"] = [broker.port, restarted.port]
        sc.checks["same_port"] = Check(restarted.port == broker.port,
                                       f"port {broker.port} -> {restarted.port}")
        log(f"  broker_kill: broker back on port {restarted.port} after "
            f"{sc.details['broker_restart_s']} s")
        _finish_stream(sc, publisher)
    except ScenarioError as exc:
        error = str(exc)
    except Exception as exc:  # the broker did not come back, or a bug here
        error = f"{type(exc).__name__}: {exc}"
        log(f"  broker_kill: {error}")
    finally:
        sc.close(grace=0 if error else 15)
    result = sc.result(error)
    if result["resume_s"] not in (None, float("inf")) and "broker_restart_s" in sc.details:
        # How long the worker took to make progress once the broker was back.
        result["details"]["resume_after_broker_back_s"] = round(
            result["resume_s"] - sc.details["broker_restart_s"], 1)
    for b in BROKERS[:]:
        if b.data_dir == data_dir:
            b.stop(timeout=20)
            BROKERS.remove(b)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def scenario_worker_kill(args: argparse.Namespace, sc: Scenario) -> None:
    sz = args.sizes
    rng = random.Random(args.seed)
    worker = sc.start_worker()
    pairs = sc.articles(sz.kill_articles)
    publisher = sc.publisher(pairs, sz.kill_rate)
    moments = []
    for k in range(sz.kills):
        sc.adopt(publisher)
        before = sc.stories_of(sc.good)
        _await_flow(sc, publisher, before + 3)  # the (restarted) worker makes progress
        pause = rng.uniform(0.5, 4.0)
        time.sleep(pause)
        sc.adopt(publisher)
        backlog = publisher.progress() - sc.stories_of(sc.good)
        log(f"  worker_kill: kill {k + 1}/{sz.kills} of pid {worker.pid} "
            f"({backlog} articles waiting)")
        sc.faults.append(sc.kill_worker(worker))
        moments.append({"at_s": round(time.monotonic() - sc.started, 1), "pause_s": round(pause, 2),
                        "backlog": backlog, "publisher_done": not publisher.is_alive()})
        worker = sc.restart()
    sc.details["kills"] = moments
    _finish_stream(sc, publisher)


def scenario_worker_takeover(args: argparse.Namespace, sc: Scenario) -> None:
    sz = args.sizes
    first = sc.start_worker()
    second = sc.start_worker()

    def stable() -> bool:
        with contextlib.suppress(Exception):
            state, members = run_async(group_state(sc.bootstrap, sc.settings.group_id), 15)
            return state == "Stable" and members == 2
        return False

    sc.wait(stable, "a stable group of two", timeout=90, raise_on_timeout=True)
    for worker in (first, second):  # both assigned and recovered after the last rebalance
        url = f"http://127.0.0.1:{worker.port}/readyz"
        sc.wait(lambda url=url: wait_http(url, 1), f"{url} ready", timeout=90,  # type: ignore[misc]
                raise_on_timeout=True)
    pairs = sc.articles(sz.takeover_articles)
    publisher = sc.publisher(pairs, sz.takeover_rate)
    _await_flow(sc, publisher, max(5, len(pairs) // 4))
    dedup = {w.pid: sc.metric(w, "wirewatch_articles_total", stage="dedup", outcome="received")
             for w in (first, second)}
    victim = first if dedup[first.pid] >= dedup[second.pid] else second
    survivor = second if victim is first else first
    clean_before = sc.metric(survivor, "wirewatch_articles_total", stage="clean",
                             outcome="received")
    log(f"  worker_takeover: killing pid {victim.pid} (dedup received {dedup})")
    sc.faults.append(sc.kill_worker(victim))
    _finish_stream(sc, publisher)
    after = sc.metric(survivor, "wirewatch_articles_total", stage="dedup", outcome="received")
    sc.details["dedup_received_before_kill"] = dedup
    sc.details["survivor_dedup_received_after"] = after
    sc.details["survivor_clean_received"] = [clean_before, sc.metric(
        survivor, "wirewatch_articles_total", stage="clean", outcome="received")]
    took = after > dedup[survivor.pid]
    sc.checks["survivor_took_over"] = Check(
        took, f"the survivor's dedup stage received {dedup[survivor.pid]:.0f} -> {after:.0f}")


def scenario_hostile(args: argparse.Namespace, sc: Scenario) -> None:
    sz = args.sizes
    hostile = hostile_payloads(sz.hostile)
    # An id in a payload names its message, so an accepted one can be told from the others.
    hostile = [Hostile(h.key, h.value.replace(b"HOSTILE_KEY", h.key) if h.value else h.value,
                       h.kind, h.expect, h.reasons) for h in hostile]
    sc.start_worker()
    sc.details["hostile"] = len(hostile)
    positions = run_async(publish_pairs(sc.bootstrap, sc.topic("raw"),
                                        [(h.key, h.value) for h in hostile]), 180)
    where = {h.name: pos for h, pos in zip(hostile, positions, strict=True)}
    pairs = sc.articles(sz.hostile_good)
    sc.publish_now(pairs)
    assert sc.tap is not None
    tap = sc.tap
    by_name = {h.name: h for h in hostile}

    def accounting() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        with tap.lock:
            dead = {d["key"]: d for d in tap.dead if d["key"] in by_name}
            leaked = {}
            for art_id, info in tap.leaks.items():
                if art_id in sc.good:
                    continue
                match = _HOSTILE_ID.match(art_id)
                leaked[match.group() if match else art_id] = info
        return dead, leaked

    def settled() -> bool:
        dead, leaked = accounting()
        return sc.stories_of(sc.good) >= len(sc.good) and all(
            h.name in dead or h.name in leaked for h in hostile)

    sc.wait(settled, "every good article on news.stories and every hostile one accounted for")
    dead, leaked = accounting()
    reasons = Counter(d["reason"] for d in dead.values())
    unaccounted = [h for h in hostile if h.name not in dead and h.name not in leaked]
    must_dead = [h for h in hostile if h.expect == "deadletter" and h.name not in dead]
    unbounded = []
    for h in hostile:
        info = leaked.get(h.name)
        if info is None:
            continue
        over = {f: n for f, n in info.items() if f in BOUNDS and n > BOUNDS[f]}
        if info.get("id_control"):
            over["id_control_characters"] = True
        if h.expect != "bounded" or over:
            unbounded.append(f"{h.name} {h.kind}: " + (", ".join(f"{f} {n}" for f, n in over.items())
                                                       or "accepted"))
    strangers = sorted(i[:60] for i in leaked if i not in by_name)
    off_reason = [f"{h.name} {h.kind}: {dead[h.name]['reason']} (expected {'/'.join(h.reasons)})"
                  for h in hostile if h.name in dead and h.reasons
                  and dead[h.name]["reason"] not in h.reasons]
    sc.details.update({
        "hostile_dead_lettered": len(dead), "hostile_reasons": dict(reasons),
        "hostile_accepted": sorted(f"{n} {by_name[n].kind}" for n in leaked if n in by_name),
        "other_records_on_stories": strangers[:10], "reason_differs_from_expected": off_reason,
    })
    if unaccounted:
        # Where each partition of news.raw is stuck: its first message with no outcome.
        firsts: dict[int, tuple[int, str]] = {}
        for h in unaccounted:
            part, off = where[h.name]
            if part not in firsts or off < firsts[part][0]:
                firsts[part] = (off, f"{h.name} {h.kind} ({len(h.value or b''):,} bytes)")
        sc.details["stuck_at"] = {f"raw[{p}]@{o}": what for p, (o, what) in sorted(firsts.items())}
    sc.checks["hostile_dead_lettered"] = Check(
        not must_dead and not unaccounted,
        f"{len(dead)} of {len(hostile)} dead-lettered; not dead-lettered: "
        + ", ".join(f"{h.name} {h.kind}" for h in must_dead[:12])
        + (f"; no outcome at all: {len(unaccounted)}" if unaccounted else ""))
    sc.checks["hostile_bounded"] = Check(not unbounded and not strangers,
                                         "; ".join(unbounded[:10]) or "none accepted unbounded")


def _post(port: int, body: bytes, token: str | None, timeout: float = 60.0) -> tuple[int | str, str]:
    """POST /watches/ with ``body``; (status or the error's name, the reply's first bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        try:
            conn.request("POST", "/watches/", body=body, headers=headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) and closed before the body was all sent
        resp = conn.getresponse()
        return resp.status, resp.read(300).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, str(exc)[:200]
    finally:
        conn.close()


def _cli(env: dict[str, str], argv: list[str]) -> tuple[int | str, str]:
    exe = Path(sys.executable).parent / "wirewatch"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "streams.cli"]
    try:
        done = subprocess.run([*command, "watch", "add", *argv], env=env, capture_output=True,
                              text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return done.returncode, (done.stderr + done.stdout)[-600:]


def scenario_watches(args: argparse.Namespace, sc: Scenario) -> None:
    sz = args.sizes
    worker = sc.start_worker()
    cases = watch_cases(sz.watches, allow_host=ALLOW_HOST)
    token = sc.env["WIREWATCH_API_TOKEN"]
    outcomes: list[tuple[WatchCase, int | str, str]] = []
    for case in (c for c in cases if c.channel == "http"):
        body = case.body if case.body is not None else json.dumps(case.fields).encode()
        status, text = _post(worker.port, body, token if case.auth else None)
        outcomes.append((case, status, text))
    with ThreadPoolExecutor(2) as pool:
        cli_cases = [c for c in cases if c.channel == "cli"]
        for case, (code, text) in zip(cli_cases, pool.map(lambda c: _cli(sc.env, c.argv or []),
                                                          cli_cases), strict=True):
            outcomes.append((case, code, text))
    # Garbage straight onto news.watches: any producer may write there.
    garbage: list[tuple[bytes | None, bytes | None]] = [
        (b"g1", b"\xff\xfe garbage"), (b"g2", b"{}"), (b"g3", b"[]"),
        (b"g4", orjson.dumps({"id": "g4", "name": "x\u0000y", "query": "x"})),
        (b"g5", orjson.dumps({"id": "g5", "name": "n" * 900_000, "query": "x"})),
        (b"g6", orjson.dumps({"id": "g6", "name": 42, "query": ["x"], "rate_limit": -1})),
        (None, b'{"id": null}'), (b"g8", b'{"a":' * 5000 + b"1" + b"}" * 5000)]
    refused_by_broker = []
    for pair in garbage:  # one at a time: the broker itself refuses some (a keyless record
        try:              # on a compacted topic), which is no concern of the workers
            run_async(publish_pairs(sc.bootstrap, sc.topic("watches"), [pair]), 60)
        except Exception as exc:
            refused_by_broker.append(f"{pair[0]!r}: {type(exc).__name__}")
    sc.details["garbage_refused_by_broker"] = refused_by_broker

    fivexx = [o for o in outcomes if o[0].channel == "http" and isinstance(o[1], int)
              and o[1] >= 500]
    sc.http_5xx = len(fivexx)
    wrong, accepted = [], []
    for case, got, text in outcomes:
        if case.channel == "http":
            ok_accept = got == 201
            ok_refuse = isinstance(got, int) and 400 <= got < 500
        else:
            ok_accept = got == 0
            ok_refuse = got == case.cli_exit and "Traceback" not in text
        verdict = "accept" if ok_accept else "refuse" if ok_refuse else "other"
        if ok_accept and case.name:
            accepted.append(case.name.strip())
        if verdict == "other" or (case.expect != "either" and verdict != case.expect):
            wrong.append(f"{case.channel} {case.label!r}: expected {case.expect}, got {got} "
                         f"{text[:160]!r}")
    sc.details["watch_cases"] = {"http": sum(c.channel == "http" for c in cases),
                                 "cli": sum(c.channel == "cli" for c in cases),
                                 "accepted": len(accepted), "garbage_records": len(garbage)}
    sc.details["watch_statuses"] = dict(Counter(f"{c.channel}:{g}" for c, g, _ in outcomes))
    sc.checks["watch_outcomes"] = Check(not wrong, f"{len(wrong)} of {len(cases)} not as "
                                        "expected" + (": " + "; ".join(wrong[:8]) if wrong else ""))

    def listed() -> set[str] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/watches/",
                                        timeout=30) as resp:
                return {w["name"] for w in orjson.loads(resp.read())["watches"]}
        except (OSError, ValueError):
            return None

    names: set[str] | None = None

    def all_listed() -> bool:
        nonlocal names
        names = listed()
        return names is not None and set(accepted) <= names

    sc.wait(all_listed, "the accepted watches in GET /watches/", timeout=30)
    names = names or set()
    refused = {c.name.strip() for c, g, _ in outcomes
               if c.name and c.expect == "refuse" and c.name.strip() not in accepted}
    sc.checks["watch_registry"] = Check(
        set(accepted) <= names and not refused & names,
        f"{len(set(accepted) - names)} accepted missing, {len(refused & names)} refused listed"
        + (f": {sorted(refused & names)[:3]}" if refused & names else ""))
    sc.publish_now(sc.articles(sz.watch_good))
    sc.wait_stories(sc.good)
    sc.details["watches_loaded"] = sc.metric(worker, "wirewatch_watches")


def _load_process(port: int, clients: int, loris: int, max_seconds: float) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "fault_load.py"), "--http-load", str(port),
         "--clients", str(clients), "--loris", str(loris), "--max-seconds", str(max_seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"})
    CHILDREN.append(process)
    return process


def scenario_http_load(args: argparse.Namespace, sc: Scenario) -> None:
    sz = args.sizes
    worker = sc.start_worker()

    def timed(n: int) -> float:
        pairs = sc.articles(n)
        ids = {k.decode() for k, _ in pairs}
        t0 = sc.publish_now(pairs)
        if not sc.wait_stories(ids, f"{n} articles on news.stories"):
            raise ScenarioError(f"only {sc.stories_of(ids)} of {n} articles reached news.stories")
        assert sc.tap is not None
        with sc.tap.lock:
            return max(sc.tap.first_seen[i] for i in ids) - t0

    timed(sz.http_warmup)
    unloaded = timed(sz.http_articles)
    log(f"  http_load: unloaded {sz.http_articles / unloaded:.1f} articles/s")
    load = _load_process(worker.port, sz.http_clients, sz.http_loris,
                         max_seconds=sz.http_seconds + sz.scenario_timeout)
    started = time.monotonic()
    summary: dict[str, Any] = {}
    try:
        time.sleep(1.0)  # the load is on before the articles are
        loaded = timed(sz.http_articles)
        log(f"  http_load: loaded {sz.http_articles / loaded:.1f} articles/s")
        time.sleep(max(0.0, started + sz.http_seconds - time.monotonic()))
        out, _ = load.communicate(b"stop\n", timeout=60)
        summary = json.loads(out.decode() or "{}")
    finally:
        kill_process(load)
    ratio = unloaded / loaded
    sc.http_5xx = int(summary.get("http_5xx", 0))
    sc.details.update({
        "unloaded_per_s": round(sz.http_articles / unloaded, 1),
        "loaded_per_s": round(sz.http_articles / loaded, 1), "ratio": round(ratio, 3),
        "load_seconds": round(time.monotonic() - started, 1), "http": summary})
    # A speed target is a benchmark's to hold, on a full run: the short run (make test, on
    # a machine doing other work) reports the ratio and checks only that the load ran and
    # was served without a 5xx.
    if not args.short:
        sc.checks["throughput_ratio"] = Check(ratio >= THROUGHPUT_TARGET,
                                              f"loaded / unloaded = {ratio:.2f} (target >= "
                                              f"{THROUGHPUT_TARGET})")
    sc.checks["load_ran"] = Check(summary.get("served", 0) > 0,
                                  f"{summary.get('served', 0)} responses served under load")


RUNNERS: dict[str, Callable[[argparse.Namespace, Scenario], None]] = {
    "worker_kill": scenario_worker_kill, "worker_takeover": scenario_worker_takeover,
    "hostile": scenario_hostile, "watches": scenario_watches, "http_load": scenario_http_load}
SESSION_ENV = {"worker_kill": {"WIREWATCH_SESSION_TIMEOUT_SECONDS": "6"},
               "worker_takeover": {"WIREWATCH_SESSION_TIMEOUT_SECONDS": "6"},
               "watches": {"WIREWATCH_WEBHOOK_ALLOW": f"{ALLOW_HOST}/32"}}


def run_scenario(name: str, args: argparse.Namespace, broker_url: str, tmp: Path) -> dict[str, Any]:
    log(f"{name}: starting (load average {os.getloadavg()[0]:.1f})")
    if name == "broker_kill":
        try:
            result = scenario_broker_kill(args, tmp)
        except Exception as exc:  # the first broker did not start
            result = {"scenario": name, "published": 0, "reached_stories": 0, "lost": 0,
                      "duplicate_revisions": 0, "opened_twice": 0, "worker_restarts": 0,
                      "unexpected_exits": [], "faults": 0, "resume_s": None,
                      "recovery_s": None, "http_5xx": None, "max_rss_mb": 0.0,
                      "internal_errors": 0, "seconds": 0.0, "pass": False, "details": {},
                      "checks": {"completed": {"ok": False,
                                               "detail": f"{type(exc).__name__}: {exc}"}}}
    else:
        sc = Scenario(name, args, broker_url, tmp, **SESSION_ENV.get(name, {}))
        error = None
        try:
            sc.open()
            RUNNERS[name](args, sc)
        except ScenarioError as exc:
            error = str(exc)
        except Exception as exc:  # a bug here, or the broker gone: the scenario fails, the run goes on
            error = f"{type(exc).__name__}: {exc}"
            log(f"  {name}: {error}")
        finally:
            # A worker stuck in C code (a payload that stalls it) cannot take a SIGTERM.
            sc.close(grace=0 if error or sc.details.get("timeouts") else 15)
        result = sc.result(error)
    log(f"{name}: {'PASS' if result['pass'] else 'FAIL'} in {result['seconds']} s")
    return result


# -------------------------------------------------------------------------- table ---

COLUMNS = ("scenario", "published", "reached news.stories", "lost", "dup (alert_id, revision)",
           "opened twice", "worker restarts", "recovery s (resume / backlog)", "HTTP 5xx",
           "max RSS MB", "result")


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "never" if value == float("inf") else f"{value:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        restarts = str(r["worker_restarts"])
        if r["unexpected_exits"]:
            restarts += f" ({len(r['unexpected_exits'])} crash)"
        recovery = ("-" if not r["faults"]
                    else f"{_seconds(r['resume_s'])} / {_seconds(r['recovery_s'])}")
        rows.append((r["scenario"], str(r["published"]), str(r["reached_stories"]), str(r["lost"]),
                     str(r["duplicate_revisions"]), str(r["opened_twice"]), restarts, recovery,
                     "-" if r["http_5xx"] is None else str(r["http_5xx"]),
                     f"{r['max_rss_mb']:.0f}", "PASS" if r["pass"] else "FAIL"))
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    notes = []
    for r in results:
        d = r["details"]
        extra = []
        if r["scenario"] == "hostile" and "hostile" in d:
            extra.append(f"{d['hostile']} hostile: {d.get('hostile_dead_lettered', 0)} dead-lettered "
                         f"{d.get('hostile_reasons', {})}, accepted {d.get('hostile_accepted', [])}")
            if d.get("stuck_at"):
                extra.append(f"stuck at {d['stuck_at']}")
        if r["scenario"] == "watches" and "watch_cases" in d:
            extra.append(f"watch cases {d['watch_cases']}, outcomes {d.get('watch_statuses')}")
        if r["scenario"] == "http_load" and "ratio" in d:
            h = d.get("http", {})
            extra.append(f"{d['unloaded_per_s']} articles/s unloaded, {d['loaded_per_s']} loaded "
                         f"(ratio {d['ratio']}); HTTP served {h.get('served')} "
                         f"{h.get('statuses')}, errors {h.get('errors')}, loris {h.get('loris')}")
        if r["scenario"] == "broker_kill" and "ports" in d:
            extra.append(f"broker back after {d.get('broker_restart_s')} s on ports {d['ports']}, "
                         f"first new story {d.get('resume_after_broker_back_s')} s later")
        if r["scenario"] == "worker_kill" and "kills" in d:
            extra.append(f"kills {d['kills']}")
        if r["scenario"] == "worker_takeover" and "dedup_received_before_kill" in d:
            extra.append(f"dedup received before the kill {d['dedup_received_before_kill']}, "
                         f"survivor after {d.get('survivor_dedup_received_after')}")
        if d.get("repeated_alerts"):
            extra.append(f"repeated alerts (alert_id revision kind article: [partition]@offset "
                         f"Kafka time) {dict(list(d['repeated_alerts'].items())[:3])}, causes "
                         f"{d.get('repeat_causes')}")
        for stalled in d.get("stall", []):
            extra.append(f"at the time-out worker {stalled['pid']} had used {stalled['cpu_s']} s "
                         f"CPU, /readyz {stalled['readyz'][:120]!r}, counters "
                         f"{stalled['metrics'].replace(chr(10), '; ')[:900]!r}")
        if r.get("story_copies"):
            extra.append(f"{r['story_copies']} extra copies of good articles on news.stories")
        failed = [f"{k}: {c['detail']}" for k, c in r["checks"].items() if not c["ok"]]
        notes.append(f"- {r['scenario']} ({r['seconds']} s): "
                     + "; ".join(extra + ([f"FAILED {'; '.join(failed)}"] if failed else [])))
    return "\n".join(out) + "\n\n" + "\n".join(notes)


# --------------------------------------------------------------------------- main ---

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--short", action="store_true", help="each scenario small (make test)")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help=f"comma-separated scenarios, of: {', '.join(SCENARIOS)}")
    ap.add_argument("--broker", default="", help="kafka://host:port for every scenario but "
                    "broker_kill (which starts its own); empty starts an embedded one")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--seed", type=int, default=17, help="seeds the kill moments")
    ap.add_argument("--broker-down", type=float, default=2.0,
                    help="seconds between killing the broker and starting it again")
    ap.add_argument("--scenario-timeout", type=float, default=None,
                    help="bound of each scenario's waits (default 100 s short, 480 s full)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="hard bound of the whole run (default 12 short, 75 full)")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the workers' logs even when every scenario passes")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    sizes = SHORT if args.short else FULL
    if args.scenario_timeout:
        sizes = Sizes(**{**sizes.__dict__, "scenario_timeout": args.scenario_timeout})
    args.sizes = sizes
    max_minutes = args.max_minutes or (12 if args.short else 75)

    def watchdog() -> None:
        log(f"the run exceeded --max-minutes {max_minutes}: stopping everything")
        cleanup_all()
        os._exit(3)

    timer = threading.Timer(max_minutes * 60, watchdog)
    timer.daemon = True
    timer.start()

    def terminated(signum: int, frame: object) -> None:
        cleanup_all()
        os._exit(143)

    signal.signal(signal.SIGTERM, terminated)
    tmp = Path(tempfile.mkdtemp(prefix="wirewatch-faults-"))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        args.articles = Articles()
        broker_url = args.broker
        if not broker_url and set(names) - {"broker_kill"}:
            log("starting the embedded Kafka broker")
            broker = EmbeddedKafka.start(load_settings())
            BROKERS.append(broker)
            broker_url = broker.url
        for name in names:
            results.append(run_scenario(name, args, broker_url, tmp))
    finally:
        cleanup_all()
        timer.cancel()
    elapsed = time.monotonic() - started
    text = table(results)
    print(f"\nfault suite ({'short' if args.short else 'full'}), {elapsed:.0f} s, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, logs in {tmp}\n")
    print(text, flush=True)
    passed = all(r["pass"] for r in results)
    print(f"\n{'PASS' if passed else 'FAIL'}: {sum(r['pass'] for r in results)} of {len(results)} "
          "scenarios pass", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"short": args.short, "seconds": round(elapsed, 1),
                                        "pass": passed, "table": text, "scenarios": results},
                                       indent=2, default=str))
    if passed and not args.keep_logs:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Does HTTP load on a worker's web port starve its pipeline? (issue 17)

    PYTHONPATH=. .venv/bin/python bench/http_load.py                 # 1,000 articles, 200 + 200
    PYTHONPATH=. .venv/bin/python bench/http_load.py --articles 200 --clients 50 --loris 50 \\
        --seconds 5 --watches 1000                                   # a quick look

Two phases, each on a fresh worker (``wirewatch worker``) with fresh topics (its own prefix
and consumer group) on the embedded Apache Kafka broker (or ``--broker kafka://host:port``),
with ``--watches`` watches loaded first (corpus phrases, as ``bench/pipeline_bench.py`` makes
them), so ``GET /watches/`` lists a real set. Each phase sends ``--warmup`` articles, then the
same ``--articles`` BBC articles (``../shared/data``, read in place; distinct bodies,
shuffled with a fixed seed, distinct ids), published at once and timed until the last one is
on ``news.stories`` (read by a consumer of this process, never through the web port):

1. **unloaded**;
2. **loaded**: while a separate process (so its CPU is not this one's) keeps ``--clients``
   HTTP/1.1 keep-alive connections each sending GETs back to back (alternating ``--paths``,
   default ``/metrics`` and ``/watches/``), ``--loris`` slow-loris connections (a request
   line, then header bytes one every ``--loris-interval`` seconds, never ending; reopened
   when the server closes them) and one ``/healthz`` probe every 0.5 s on a fresh
   connection. The load starts ``--ramp`` seconds before the articles (the unloaded phase
   pauses as long) and lasts at least ``--seconds`` (longer if the articles are not
   through by then). If they are not through within ``--max-wait`` seconds, the loaded
   rate is what got through by then; the rest must still arrive once the load is over
   ("never processed" counts those that do not).

Why two workers rather than one worker twice: on one worker the second thousand meets a
fuller dedup window and more open stories, and measured 0.70 of the first's rate (median of
3) with no HTTP load at all. ``--repeats`` runs alternate which phase goes first.

The table: articles/s unloaded and loaded and their ratio, HTTP responses served, by status,
5xx, p50/p99 latency per path, the /healthz probes, slow-loris connections the server closed,
and client errors (timeouts: a response slower than 30 s; resets). Everything is on loopback
and bounded in count and time. ``--out`` also writes the numbers as JSON.

The load generator (``start_load``) is shared with tests/integration/test_http_load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `streams`, `agents` importable
    sys.path.insert(0, str(REPO))

from streams.client import from_the_start, topic_partitions  # noqa: E402
from streams.text import normalize  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"
REQUEST_TIMEOUT = 30.0
HEALTH_EVERY = 0.5


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- articles ---

def bbc_articles(path: Path = DATA, *, seed: int = 17) -> list[dict[str, Any]]:
    """BBC rows with distinct bodies (a repeated body is rightly dropped as an exact copy and
    would never reach news.stories): 2,087 of the 2,225, in an order shuffled with ``seed``.
    The file is grouped by category (business, entertainment, politics, then sport and tech,
    longer and hitting other watches): taken in file order, the second 1,000 cost the worker
    ~40 % more CPU than the first, which a loaded-after-unloaded comparison would blame on
    the load."""
    rows, bodies = [], set()
    with gzip.open(path, "rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            body = normalize(row["text"])
            if body not in bodies:
                bodies.add(body)
                rows.append(row)
    random.Random(seed).shuffle(rows)
    return rows


class Articles:
    """Hands out consecutive BBC articles as raw JSON with ids ``<tag>-<n>-<bbc id>``; past
    the distinct bodies it loops, each loop's text prefixed ``Update <k>:`` (a near
    duplicate: it still reaches news.stories)."""

    def __init__(self, rows: list[dict[str, Any]], tag: str) -> None:
        self.rows, self.tag, self.next = rows, tag, 0

    def take(self, n: int) -> tuple[list[tuple[bytes, bytes]], set[str]]:
        pairs, ids = [], set()
        for i in range(self.next, self.next + n):
            loop, index = divmod(i, len(self.rows))
            row = self.rows[index]
            art_id, payload = bbc_payload(self.tag, i, loop, row)
            pairs.append((art_id.encode(), payload))
            ids.add(art_id)
        self.next += n
        return pairs, ids


async def publish_and_time(bootstrap: str, raw_topic: str, stories_topic: str,
                           pairs: list[tuple[bytes, bytes]], ids: set[str],
                           timeout: float = 600.0) -> tuple[float, int]:
    """Publish ``pairs`` to raw at once; (seconds from the first send until every id of
    ``ids`` has been read back from news.stories, how many were). Past ``timeout`` seconds it
    stops waiting: (``timeout``, how many had arrived by then)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, stories_topic)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, before anything is published
            await consumer.position(tp)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5,
                                    max_batch_size=256 * 1024,
                                    max_request_size=16 * 1024 * 1024)
        await producer.start()
        t0 = time.perf_counter()
        try:
            futures = [await producer.send(raw_topic, key=k, value=v) for k, v in pairs]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        missing = set(ids)
        while missing:
            if time.perf_counter() - t0 > timeout:
                return timeout, len(ids) - len(missing)
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for msg in messages:
                    if msg.value is not None:
                        missing.discard(orjson.loads(msg.value).get("id"))
        return time.perf_counter() - t0, len(ids)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def missing_ids(bootstrap: str, stories_topic: str, ids: set[str],
                      timeout: float = 300.0) -> set[str]:
    """The ids of ``ids`` not on news.stories within ``timeout`` seconds (read from the
    start of the topic)."""
    missing = set(ids)
    async with from_the_start(bootstrap, stories_topic) as (consumer, _):
        deadline = time.monotonic() + timeout
        while missing and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                for msg in messages:
                    if msg.value is not None:
                        missing.discard(orjson.loads(msg.value).get("id"))
    return missing


# ----------------------------------------------------------------------- HTTP load ---

@dataclass
class LoadStats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)  # "200", "503", ...
    errors: Counter[str] = field(default_factory=Counter)
    health: list[float] = field(default_factory=list)
    health_failures: Counter[str] = field(default_factory=Counter)
    loris_opened: int = 0
    loris_closed_by_server: int = 0
    loris_open: int = 0
    loris_max_open: int = 0
    loris_statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, path: str, status: int, seconds: float) -> None:
        self.latencies.setdefault(path, []).append(seconds)
        self.statuses[str(status)] += 1

    def summary(self) -> dict[str, Any]:
        every = sorted(x for v in self.latencies.values() for x in v)
        served = sum(self.statuses.values())
        return {
            "seconds": round(self.seconds, 2),
            "served": served,
            "per_second": round(served / self.seconds, 1) if self.seconds else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
            "5xx": sum(n for s, n in self.statuses.items() if s.startswith("5")),
            "p50": _pct(every, 50), "p99": _pct(every, 99), "max": every[-1] if every else None,
            "per_path": {p: {"served": len(v), "p50": _pct(sorted(v), 50),
                             "p99": _pct(sorted(v), 99)}
                         for p, v in sorted(self.latencies.items())},
            "errors": dict(self.errors),
            "healthz": {"probes": len(self.health), "max": max(self.health, default=None),
                        "p50": _pct(sorted(self.health), 50),
                        "failures": dict(self.health_failures)},
            "loris": {"opened": self.loris_opened,
                      "closed_by_server": self.loris_closed_by_server,
                      "max_open": self.loris_max_open, "statuses": dict(self.loris_statuses)},
        }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * q / 100))], 4)


def bbc_payload(tag: str, i: int, loop: int, row: dict[str, Any]) -> tuple[str, bytes]:
    """The ``i``-th article of a replay as a raw JSON message: a distinct id, and from the
    second loop over the corpus on a text starting "Update <loop>:" (a near duplicate, not an
    exact copy). Shared with the fault suite."""
    art_id = f"{tag}-{i}-{row['id']}"
    text = f"Update {loop}: {row['text']}" if loop else row["text"]
    body = {"id": art_id, "source": row.get("source") or "BBC News",
            "title": row.get("title") or "", "text": text, "language": "en"}
    return art_id, orjson.dumps(body)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; (status, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.read()  # to EOF
        return status, False
    return status, headers.get("connection") != "close"


async def _client(host: str, port: int, paths: list[str], index: int, stop: asyncio.Event,
                  st: LoadStats) -> None:
    """GETs back to back on one keep-alive connection (a new one when it closes)."""
    turn = index
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            while not stop.is_set():
                path = paths[turn % len(paths)]
                turn += 1
                t0 = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                status, keep = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                st.record(path, status, time.perf_counter() - t0)
                if not keep:
                    break
        except TimeoutError:
            st.errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as exc:
            st.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.close()


async def _loris(host: str, port: int, stop: asyncio.Event, st: LoadStats,
                 interval: float) -> None:
    """A request whose headers never end: one byte every ``interval`` seconds; reopened
    when the server closes it."""
    pad = b"X-Slow: " + b"a" * 56 + b"\r\n"  # header lines of 66 bytes, sent a byte at a time
    while not stop.is_set():
        writer = None
        reply: asyncio.Future[bytes] | None = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            st.loris_opened += 1
            st.loris_open += 1
            st.loris_max_open = max(st.loris_max_open, st.loris_open)
            try:
                writer.write(f"GET /metrics HTTP/1.1\r\nHost: {host}\r\n".encode())
                reply = asyncio.ensure_future(reader.read(65536))
                sent = 0
                while not stop.is_set():
                    done, _ = await asyncio.wait([reply], timeout=interval)
                    if done:
                        data = reply.result()
                        st.loris_closed_by_server += 1
                        if data.startswith(b"HTTP/"):
                            st.loris_statuses[data.split(b" ", 2)[1].decode()] += 1
                        break
                    writer.write(pad[sent % len(pad):sent % len(pad) + 1])
                    sent += 1
            finally:
                st.loris_open -= 1
        except TimeoutError:
            st.errors["loris_connect_timeout"] += 1
        except (OSError, ValueError) as exc:
            st.errors[f"loris_{type(exc).__name__}"] += 1
            await asyncio.sleep(0.1)
        finally:
            if reply is not None and not reply.done():
                reply.cancel()
            if writer is not None:
                writer.close()


async def _health(host: str, port: int, stop: asyncio.Event, st: LoadStats) -> None:
    """GET /healthz on a fresh connection every HEALTH_EVERY seconds."""
    while not stop.is_set():
        t0 = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                         .encode())
            status, _ = await asyncio.wait_for(read_response(reader), 10)
            if status == 200:
                st.health.append(time.perf_counter() - t0)
            else:
                st.health_failures[str(status)] += 1
        except TimeoutError:
            st.health_failures["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            st.health_failures[type(exc).__name__] += 1
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(max(0.0, HEALTH_EVERY - (time.perf_counter() - t0)))


async def hammer(host: str, port: int, *, clients: int, loris: int, paths: list[str],
                 stop: asyncio.Event, loris_interval: float = 1.0) -> LoadStats:
    """Run the load until ``stop`` is set; its stats."""
    st = LoadStats()
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(_client(host, port, paths, i, stop, st))
             for i in range(clients)]
    tasks += [asyncio.create_task(_loris(host, port, stop, st, loris_interval))
              for _ in range(loris)]
    tasks.append(asyncio.create_task(_health(host, port, stop, st)))
    await stop.wait()
    st.seconds = time.perf_counter() - t0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return st


async def _load_main(args: argparse.Namespace) -> dict[str, Any]:
    """The load process: runs until a line on stdin (or EOF), at most ``--max-seconds``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    earliest = loop.time() + args.min_seconds  # from here, not from the parent's Popen
    waiter = loop.run_in_executor(None, sys.stdin.readline)
    waiter.add_done_callback(lambda _: loop.call_at(earliest, stop.set))
    loop.call_later(args.max_seconds, stop.set)
    cpu = time.process_time()
    st = await hammer(args.host, args.load_port, clients=args.clients, loris=args.loris,
                      paths=args.paths.split(","), stop=stop,
                      loris_interval=args.loris_interval)
    return {**st.summary(), "cpu_seconds": round(time.process_time() - cpu, 2)}


class Load:
    """The HTTP load in a child process; ``finish()`` (no sooner than ``seconds`` after the
    start) stops it and returns its summary."""

    def __init__(self, port: int, *, clients: int, loris: int, paths: list[str],
                 seconds: float, loris_interval: float = 1.0, max_seconds: float = 600.0
                 ) -> None:
        self.seconds = seconds
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 (read in finish(), then closed)
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--load-port", str(port),
             "--clients", str(clients), "--loris", str(loris), "--paths", ",".join(paths),
             "--loris-interval", str(loris_interval), "--min-seconds", str(seconds),
             "--max-seconds", str(max_seconds)],
            stdin=subprocess.PIPE, stdout=self.out, cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"})
        self.started = time.monotonic()

    def finish(self) -> dict[str, Any]:
        time.sleep(max(0.0, self.started + self.seconds - time.monotonic()))
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write(b"stop\n")
            self.process.stdin.close()
        self.process.wait(60)
        self.out.seek(0)
        text = self.out.read().decode()
        self.out.close()
        if self.process.returncode != 0:
            raise RuntimeError(f"load process exited {self.process.returncode}: {text[-2000:]}")
        summary: dict[str, Any] = json.loads(text)
        return summary

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_load(port: int, **kwargs: Any) -> Load:
    return Load(port, **kwargs)


# --------------------------------------------------------------------------- bench ---

def phase(args: argparse.Namespace, url: str, rows: list[dict[str, Any]],
          watches: list[Any], *, loaded: bool) -> dict[str, Any]:
    """One worker on fresh topics (its own prefix and group) with ``watches``: a warm-up,
    then ``--articles`` articles timed, under the HTTP load if ``loaded``. Every phase takes
    the same articles (the same ``rows`` from the start), so every phase does the same work
    from the same state."""
    from bench.pipeline_bench import proc_cpu_seconds
    from streams.client import publish
    from streams.processes import spawn_worker, stop_process, wait_http
    from streams.records import encode
    from streams.settings import load_settings
    from streams.topics import bootstrap_servers, ensure_topics, topic_name

    name = "loaded" if loaded else "unloaded"
    tmp = Path(tempfile.mkdtemp(prefix=f"http_load-{name}-"))
    prefix = f"h{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}",
           "WIREWATCH_BROKER_URL": url, "WIREWATCH_TOPIC_PREFIX": prefix,
           "WIREWATCH_APP_ID": f"httpload-{prefix.rstrip('.')}",
           "WIREWATCH_LOG_LEVEL": "info", "WIREWATCH_ALERT_RATE_LIMIT": str(10**9)}
    settings = load_settings(env)
    bootstrap = bootstrap_servers(settings)
    worker = None
    load: Load | None = None
    try:
        ensure_topics(settings)
        if watches:
            asyncio.run(publish(bootstrap, topic_name(settings, "watches"),
                                [(w.id.encode(), encode(w)) for w in watches]))
        log_path = tmp / "worker.log"
        worker, port = spawn_worker(env, log_path=log_path)
        if not wait_http(f"http://127.0.0.1:{port}/readyz", 180):
            raise RuntimeError("worker not ready:\n" + log_path.read_text()[-3000:])
        _wait_watches(port, len(watches))
        articles = Articles(rows, "a")
        raw, stories = topic_name(settings, "raw"), topic_name(settings, "stories")
        pid = worker.pid

        def timed(n: int, timeout: float = 600.0) -> dict[str, Any]:
            pairs, ids = articles.take(n)
            cpu0 = proc_cpu_seconds(pid)
            seconds, done = asyncio.run(publish_and_time(bootstrap, raw, stories, pairs, ids,
                                                         timeout))
            return {"ids": ids, "seconds": seconds, "done": done,
                    "per_s": round(done / seconds, 1),
                    "cpu": round(proc_cpu_seconds(pid) - cpu0, 2)}

        timed(args.warmup)
        paths = args.paths.split(",")
        if loaded:
            log(f"{name}: worker on :{port} (log {log_path}); {args.clients} clients on "
                f"{paths}, {args.loris} slow-loris, >= {args.seconds} s")
            load = start_load(port, clients=args.clients, loris=args.loris, paths=paths,
                              seconds=args.seconds, loris_interval=args.loris_interval)
        else:
            log(f"{name}: worker on :{port} (log {log_path})")
        time.sleep(args.ramp)  # in both phases: the same pause between warm-up and run
        result = timed(args.articles, args.max_wait if loaded else 600.0)
        log(f"  {result['per_s']} articles/s ({result['done']} of {args.articles} in "
            f"{result['seconds']:.1f} s)")
        if load is not None:
            result["http"] = load.finish()
            load = None
        if worker.poll() is not None:
            raise RuntimeError("worker died:\n" + log_path.read_text()[-3000:])
        result["lost"] = len(asyncio.run(missing_ids(bootstrap, stories, result.pop("ids"))))
        return result
    finally:
        if load is not None:
            load.kill()
        if worker is not None:
            stop_process(worker)


def run(args: argparse.Namespace, url: str, rows: list[dict[str, Any]], watches: list[Any],
        *, loaded_first: bool = False) -> dict[str, Any]:
    """One measurement: an unloaded and a loaded phase (in that order unless
    ``loaded_first``), each on a fresh worker."""
    phases = {}
    for loaded in ((True, False) if loaded_first else (False, True)):
        phases[loaded] = phase(args, url, rows, watches, loaded=loaded)
    unloaded, loaded_ = phases[False], phases[True]
    http = loaded_["http"]
    return {
        "articles": args.articles, "watches": len(watches), "clients": args.clients,
        "loris": args.loris, "paths": args.paths.split(","), "load_seconds": http["seconds"],
        "order": "loaded first" if loaded_first else "unloaded first",
        "unloaded_per_s": unloaded["per_s"], "loaded_per_s": loaded_["per_s"],
        "loaded_done": loaded_["done"], "loaded_seconds": round(loaded_["seconds"], 2),
        "never_processed": unloaded["lost"] + loaded_["lost"],
        "ratio": round(loaded_["per_s"] / unloaded["per_s"], 3),
        "worker_cpu_s": {"unloaded": unloaded["cpu"], "loaded": loaded_["cpu"]},
        "http": http, "loadavg": os.getloadavg(),
    }


def _wait_watches(port: int, count: int, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("wirewatch_watches ") and float(line.split()[1]) >= count:
                    return
        time.sleep(0.5)
    raise RuntimeError(f"the worker never loaded {count} watches")


def table(r: dict[str, Any]) -> str:
    h = r["http"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{1000 * v:.0f} ms"

    loaded = f"{r['loaded_per_s']}"
    if r["loaded_done"] < r["articles"]:
        loaded += f"  (only {r['loaded_done']} of {r['articles']} in {r['loaded_seconds']} s)"
    rows = [
        ("articles/s unloaded", f"{r['unloaded_per_s']}"),
        ("articles/s loaded", loaded),
        ("ratio loaded / unloaded", f"{r['ratio']:.2f}  (target >= 0.50)"),
        ("articles never processed", f"{r['never_processed']}"),
        ("worker CPU s (unloaded / loaded run)",
         f"{r['worker_cpu_s']['unloaded']} / {r['worker_cpu_s']['loaded']}"),
        ("HTTP responses served", f"{h['served']} in {h['seconds']} s ({h['per_second']}/s)"),
        ("HTTP statuses", ", ".join(f"{k}: {v}" for k, v in h["statuses"].items()) or "-"),
        ("HTTP 5xx", f"{h['5xx']}  (target 0)"),
        ("HTTP latency p50 / p99 / max", f"{ms(h['p50'])} / {ms(h['p99'])} / {ms(h['max'])}"),
        *[(f"  {p}: served, p50 / p99", f"{v['served']}, {ms(v['p50'])} / {ms(v['p99'])}")
          for p, v in h["per_path"].items()],
        ("/healthz probes, p50 / max",
         f"{h['healthz']['probes']}, {ms(h['healthz']['p50'])} / {ms(h['healthz']['max'])}"
         + (f", failures {h['healthz']['failures']}" if h["healthz"]["failures"] else "")),
        ("slow-loris opened / closed by server / max open",
         f"{h['loris']['opened']} / {h['loris']['closed_by_server']} / {h['loris']['max_open']}"
         + (f", replies {h['loris']['statuses']}" if h["loris"]["statuses"] else "")),
        ("client errors", ", ".join(f"{k}: {v}" for k, v in h["errors"].items()) or "none"),
        ("load generator CPU s", f"{h.get('cpu_seconds')}"),
    ]
    width = max(len(k) for k, _ in rows)
    head = (f"{r['articles']} articles, {r['watches']} watches, {r['clients']} clients on "
            f"{','.join(r['paths'])}, {r['loris']} slow-loris, load {r['load_seconds']} s, "
            f"{r['order']}")
    return head + "\n" + "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--broker", default=os.environ.get("WIREWATCH_BROKER_URL", ""),
                    help="kafka://host:port; empty starts the embedded broker")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--articles", type=int, default=1000, help="articles per timed run")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--watches", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--loris", type=int, default=200)
    ap.add_argument("--loris-interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="least load duration")
    ap.add_argument("--ramp", type=float, default=2.0,
                    help="seconds between warm-up and timed run, in both phases (in the "
                         "loaded one, with the load already on)")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="stop timing the loaded run after this many seconds (the rate is "
                         "then what got through); the rest must still arrive after the load")
    ap.add_argument("--paths", default="/metrics,/watches/")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs (each a fresh worker and topics); each one's table, then medians")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    # the load process (internal)
    ap.add_argument("--load-port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    ap.add_argument("--min-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--max-seconds", type=float, default=600.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.load_port:
        print(json.dumps(asyncio.run(_load_main(args))), flush=True)
        return 0
    from streams.broker import EmbeddedKafka
    from streams.settings import load_settings

    broker = None
    url = args.broker
    if not url:
        log("starting the embedded Kafka broker")
        broker = EmbeddedKafka.start(load_settings({}))
        url = broker.url
    from bench.pipeline_bench import Corpus

    rows = bbc_articles(args.data)
    watches = Corpus(args.data).watches(args.watches) if args.watches else []
    results = []
    try:
        for i in range(args.repeats):
            if args.repeats > 1:
                log(f"run {i + 1}/{args.repeats}")
            # Odd runs measure the loaded phase first: a machine getting busier or quieter
            # over the minutes of a run does not always favour the same side.
            results.append(run(args, url, rows, watches, loaded_first=i % 2 == 1))
            print(table(results[-1]), flush=True)
    finally:
        if broker is not None:
            broker.stop()
    if args.repeats > 1:
        print(f"medians of {args.repeats}: unloaded "
              f"{statistics.median(r['unloaded_per_s'] for r in results):.1f}/s, loaded "
              f"{statistics.median(r['loaded_per_s'] for r in results):.1f}/s, ratio "
              f"{statistics.median(r['ratio'] for r in results):.2f}, 5xx "
              f"{sum(r['http']['5xx'] for r in results)}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How close the pipeline runs to Faust's own ceiling: throughput, CPU, latency and memory.

    PYTHONPATH=. .venv/bin/python bench/pipeline_bench.py            # what `make bench` runs
    PYTHONPATH=. .venv/bin/python bench/pipeline_bench.py --articles 200 --repeats 1 \\
        --memory-articles 500 --latency-seconds 5                    # a quick look

Everything runs on one embedded Apache Kafka broker (or ``--broker kafka://host:port``), each
measurement under its own topic prefix and consumer group, with workers as separate processes
(``wirewatch worker``, and ``bench/passthrough.py`` for the ceiling):

1. **Ceiling**: ``bench/passthrough.py``, four Faust agents that only decode and re-send
   (raw 4 -> h1 4 -> h2 1 -> h3 4 -> out 4 partitions, like the pipeline), same payloads,
   same producer and consumer settings. Done when the ``out`` topic holds the whole batch.
2. **Pipeline throughput**: clean -> tag -> dedup -> alert with ``--watches`` watches (phrases
   drawn from the corpus, published to news.watches first), one worker and then two (same
   app id, each its own web port). A fixed batch is published and timed until the last
   article has left the pipeline (the workers' ``wirewatch_stage_processing_seconds_count``
   for alert, plus articles dropped by dedup or dead-lettered). CPU µs per article: whole
   process from /proc/<pid>/stat, per stage from ``..._seconds_sum / _count`` (the stage's
   own code including its awaited send). Each of ``--repeats`` rounds starts fresh
   processes and topics and measures ceiling, one worker, two workers in turn; the table
   gives medians and the ratios' medians.
3. **Latency** at a fixed rate (default half the one-worker median): publish -> record on
   news.stories and publish -> alert on news.alerts, from ``received_at`` (the raw message's
   Kafka timestamp) to the output record's Kafka timestamp, and to the moment the bench's
   consumer received it; plus the per-hop split from ``stage_times``.
4. **Memory**: one worker's VmRSS (/proc/<pid>/status) while ``--memory-articles`` stream
   through with ``WIREWATCH_DEDUP_MAX_ARTICLES`` lowered so the dedup window fills during
   the run; RSS at every 10 % of the stream and the change over the last half.

The corpus (BBC, 2,225 articles) is read in place and replayed in loops: loop k > 0 gives
each article the id ``<id>~r<k>`` and prefixes its text with ``Update <k>: ``, so no copy is
an exact duplicate of another loop's (dedup marks it a near-duplicate of the original, joins
its story, and alert sends an update). The corpus' own exact duplicates stay exact
duplicates within each loop. The per-watch rate limit is set out of reach
(WIREWATCH_ALERT_RATE_LIMIT) so every alert is sent; both apps log at ``info``, the default.

The table is printed and the results saved as JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from agents.watch.definitions import make_watch
from streams.broker import EmbeddedKafka
from streams.client import publish, topic_partitions
from streams.processes import free_port, spawn_worker, stop_process, wait_http
from streams.records import encode
from streams.settings import load_settings
from streams.stages import PIPELINE
from streams.topics import bootstrap_servers, ensure_topics, topic_name

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "bbc_news_2225.jsonl.gz"
RESULTS = REPO / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
STAGES = tuple(stage.name for stage in PIPELINE)  # streams/stages.py
STOP = {"the", "and", "for", "that", "with", "this", "from", "have", "said", "will", "were",
        "been", "their", "which", "would", "there", "about", "they", "also", "more", "than",
        "but", "has", "had", "not", "its", "who", "was", "are", "his", "her", "into", "after",
        "over", "says", "could", "should", "being", "some", "other", "what", "when", "where"}
TARGETS = {"throughput_ratio": 0.5, "p99_alert_seconds": 0.1, "two_worker_speedup": 1.6,
           "rss_last_half_change": 0.10}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- corpus ---

class Corpus:
    """The BBC corpus replayed in loops with unique ids (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        with gzip.open(path, "rb") as fh:
            self.rows = [orjson.loads(line) for line in fh if line.strip()]

    def payload(self, n: int) -> tuple[bytes, bytes]:
        """The n-th article of the endless replay: (key, raw JSON value)."""
        loop, row = divmod(n, len(self.rows))
        r = self.rows[row]
        text = r.get("text") or ""
        art_id = r["id"]
        if loop:
            art_id, text = f"{art_id}~r{loop}", f"Update {loop}: {text}"
        body = {"id": art_id, "source": r.get("source") or "BBC News", "title": r.get("title") or "",
                "text": text, "language": "en", "url": f"https://bbc.example/{art_id}"}
        if r.get("published_at"):
            body["published_at"] = r["published_at"]
        return art_id.encode(), orjson.dumps(body)

    def watches(self, count: int, seed: int = 7) -> list[Any]:
        """``count`` watches a newsroom might write: a name or phrase of 1-3 words seen in the
        corpus with at least one word rare in English at large (wordfreq Zipf < 4, e.g.
        "Vodafone", "Everton", "credit card spending"; single words capitalised), a quarter of
        them two or three such phrases joined by OR. Seeded, so every run gets the same list."""
        from wordfreq import zipf_frequency

        rng = random.Random(seed)
        docs = [re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]", f"{r.get('title', '')} "
                           f"{r.get('text', '')}") for r in self.rows]

        def phrase() -> str:
            while True:
                words = rng.choice(docs)
                size = rng.choices((1, 2, 3), (30, 50, 20))[0]
                if len(words) <= size:
                    continue
                i = rng.randrange(0, len(words) - size)
                chunk = words[i:i + size]
                first, last = chunk[0].lower(), chunk[-1].lower()
                if first in STOP or last in STOP or len(first) < 3 or len(last) < 3:
                    continue
                # A topic, not a common word: some word of it is rare in English at large.
                if min(zipf_frequency(w.lower(), "en") for w in chunk) >= 4.0:
                    continue
                if size == 1 and not chunk[0][0].isupper():
                    continue
                return chunk[0] if size == 1 else '"' + " ".join(chunk) + '"'

        watches: dict[str, Any] = {}
        while len(watches) < count:
            query = phrase() if rng.random() < 0.75 else " OR ".join(
                phrase() for _ in range(rng.randint(2, 3)))
            watch = make_watch(f"bench {len(watches)} {query}"[:120], query, created_at=0.0)
            watches[watch.id] = watch
        return list(watches.values())


class Feeder:
    """Hands out consecutive articles of the replay, so every id in a run is unique."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus, self.next = corpus, 0

    def take(self, n: int) -> list[tuple[bytes, bytes]]:
        out = [self.corpus.payload(self.next + i) for i in range(n)]
        self.next += n
        return out


# ---------------------------------------------------------------------------- process ---

def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})? (\S+)$", re.M)


def scrape(port: int) -> dict[tuple[str, str], float]:
    """A worker's /metrics as {(name, 'k="v",...'): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(name, labels or ""): float(value) for name, labels, value in _METRIC_LINE.findall(text)}


def mval(metrics: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed: sorted
    return metrics.get((name, want), 0.0)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@dataclass
class Run:
    """One configuration under its own topic prefix and consumer group."""

    bench: Bench
    kind: str  # "pipeline" | "passthrough"
    env_extra: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"b{uuid.uuid4().hex[:8]}.")
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {**self.bench.env, "WIREWATCH_TOPIC_PREFIX": self.prefix,
                    "WIREWATCH_APP_ID": f"bench-{self.kind}-{self.prefix.rstrip('.')}",
                    **self.env_extra}
        self.settings = load_settings(self.env)
        self.bootstrap = bootstrap_servers(self.settings)
        if self.kind == "pipeline":
            ensure_topics(self.settings)
            self.raw_topic = topic_name(self.settings, "raw")
        else:
            from bench.passthrough import PARTITIONS, topic_names

            names = topic_names(self.prefix)
            asyncio.run(_create_topics(self.bootstrap, {names[k]: p for k, p in PARTITIONS.items()}))
            self.raw_topic, self.out_topic = names["raw"], names["out"]

    def start_worker(self) -> Worker:
        index = len(self.workers)
        log_path = self.bench.tmp / f"{self.prefix}{self.kind}{index}.log"
        if self.kind == "pipeline":
            process, port = spawn_worker(self.env, log_path=log_path)
        else:
            port = free_port()
            env = {**self.env, "WIREWATCH_WEB_PORT": str(port)}
            with log_path.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bench.passthrough", "worker", "--loglevel",
                     {"warning": "warn", "critical": "crit"}.get(self.settings.log_level,
                                                                self.settings.log_level)],
                    env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
        worker = Worker(process, port, log_path)
        self.workers.append(worker)
        page = "/readyz" if self.kind == "pipeline" else "/healthz"  # 503 until recovered
        if not wait_http(f"http://127.0.0.1:{port}{page}", 120):
            raise RuntimeError(f"{self.kind} worker did not start:\n{worker.tail()}")
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker.process)
        self.workers.clear()

    # --- progress: how many articles have left the pipeline (or reached pass.out) ---

    def done(self) -> int:
        if self.kind == "passthrough":
            return asyncio.run(_end_offsets_total(self.bootstrap, self.out_topic))
        total = 0.0
        for worker in self.workers:
            m = scrape(worker.port)
            total += mval(m, "wirewatch_stage_processing_seconds_count", stage="alert")
            total += mval(m, "wirewatch_articles_total", stage="dedup", outcome="dropped")
            for stage in STAGES[:-1]:  # a dead letter before alert leaves the pipeline too
                total += mval(m, "wirewatch_articles_total", stage=stage, outcome="dead_lettered")
        return int(total)

    def wait_done(self, target: int, timeout: float, *, on_poll: Callable[[int], None] | None = None
                  ) -> float:
        """Poll until ``done() >= target``; returns the time it was first seen (perf_counter).
        Polls every 0.5 s until 95 % and then every 0.1 s, so scraping costs the worker little."""
        deadline = time.perf_counter() + timeout
        last, last_change = -1, time.perf_counter()
        while time.perf_counter() < deadline:
            now_done = self.done()
            now = time.perf_counter()
            if on_poll:
                on_poll(now_done)
            if now_done >= target:
                return now
            if now_done != last:
                last, last_change = now_done, now
            elif now - last_change > 120:
                break
            for w in self.workers:
                if w.process.poll() is not None:
                    raise RuntimeError(f"worker exited ({w.process.returncode}):\n{w.tail()}")
            time.sleep(0.1 if now_done >= 0.95 * target else 0.5)
        counts = "" if self.kind == "passthrough" else "\n".join(
            f"{name}{{{labels}}} {value}" for w in self.workers
            for (name, labels), value in scrape(w.port).items()
            if value and name in ("wirewatch_articles_total", "wirewatch_dead_letters_total",
                                  "wirewatch_duplicates_total"))
        raise RuntimeError(f"{self.kind}: stuck at {last}/{target} articles\n{counts}\n"
                           + "\n".join(w.tail() for w in self.workers))

    def cpu(self) -> float:
        return sum(proc_cpu_seconds(w.pid) for w in self.workers)

    def stage_sums(self) -> dict[str, tuple[float, float]]:
        out = {s: [0.0, 0.0] for s in STAGES}
        for worker in self.workers:
            m = scrape(worker.port)
            for s in STAGES:
                out[s][0] += mval(m, "wirewatch_stage_processing_seconds_sum", stage=s)
                out[s][1] += mval(m, "wirewatch_stage_processing_seconds_count", stage=s)
        return {s: (v[0], v[1]) for s, v in out.items()}


async def _create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(n, p, 1) for n, p in partitions.items()])
        for _ in range(100):
            described = await admin.describe_topics(list(partitions))
            if all(t["error_code"] == 0 and t["partitions"]
                   and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, member count) of a consumer group."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = (await admin.describe_consumer_groups([group]))[0]
        info = response.to_object()["groups"][0]
        return info["state"], len(info["members"])
    finally:
        await admin.close()


async def _end_offsets_total(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def _publish_fast(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    """The batch as fast as the broker takes it (linger 5 ms, acks=1)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5,
                                max_batch_size=256 * 1024, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


# ------------------------------------------------------------------------------ bench ---

@dataclass
class Bench:
    args: argparse.Namespace
    broker_url: str
    tmp: Path
    corpus: Corpus
    watches: list[Any]
    broker_pid: int | None = None
    runs: list[Run] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        a = self.args
        return {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}",
                "WIREWATCH_BROKER_URL": self.broker_url,
                "WIREWATCH_LOG_LEVEL": a.worker_log_level,
                "WIREWATCH_ALERT_RATE_LIMIT": str(10**9),
                "WIREWATCH_DEDUP_MAX_ARTICLES": str(a.dedup_max_articles),
                "WIREWATCH_PRODUCER_LINGER_MS": str(a.linger_ms),
                "WIREWATCH_COMMIT_INTERVAL_SECONDS": str(a.commit_interval)}

    def broker_cpu(self) -> float:
        return proc_cpu_seconds(self.broker_pid) if self.broker_pid else 0.0

    def start(self, kind: str, workers: int, **env: str) -> tuple[Run, Feeder]:
        """Fresh topics (+ the watch list for the pipeline), ``workers`` processes, and a
        warm-up batch through all of them (so start-up and group joins are not timed)."""
        if kind == "passthrough" and self.args.ceiling_fetch_max_wait_ms:
            env = {"BENCH_FETCH_MAX_WAIT_MS": str(self.args.ceiling_fetch_max_wait_ms), **env}
        run = Run(self, kind, env_extra=env)
        self.runs.append(run)
        try:
            return run, self._warm(run, kind, workers)
        except BaseException:
            run.stop()
            raise

    def _warm(self, run: Run, kind: str, workers: int) -> Feeder:
        if kind == "pipeline":
            asyncio.run(publish(run.bootstrap, topic_name(run.settings, "watches"),
                                [(w.id.encode(), encode(w)) for w in self.watches]))
        for _ in range(workers):
            run.start_worker()
        if workers > 1:
            # Publish only once every worker has joined the group: a rebalance in the middle
            # of the warm-up can stall Faust (seen once here: a worker idle for minutes).
            group, deadline = run.settings.group_id, time.monotonic() + 120
            while True:
                with contextlib.suppress(Exception):
                    state, members = asyncio.run(_group_members(run.bootstrap, group))
                    if state == "Stable" and members == workers:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"group {group} never became stable with {workers} members")
                time.sleep(0.5)
            # Assigned and recovered after the last rebalance (the pass-through has no tables
            # and no /readyz: its warm-up batch below shows it flows).
            for worker in run.workers if kind == "pipeline" else []:
                if not wait_http(f"http://127.0.0.1:{worker.port}/readyz", 120):
                    raise RuntimeError(f"worker not ready:\n{worker.tail()}")
        feeder = Feeder(self.corpus)
        warm = self.args.warmup
        for attempt in range(4):
            asyncio.run(_publish_fast(run.bootstrap, run.raw_topic, feeder.take(warm)))
            run.wait_done(feeder.next, 180)
            if kind == "passthrough" or workers == 1 or all(
                    mval(scrape(w.port), "wirewatch_articles_total", stage="clean",
                         outcome="received") > 0 for w in run.workers):
                break
            log(f"  warm-up {attempt + 1}: not every worker has partitions yet")
            time.sleep(2)
        time.sleep(0.5)
        return feeder

    def throughput(self, kind: str, workers: int, *, profile: Path | None = None
                   ) -> dict[str, Any]:
        label = f"{'ceiling' if kind == 'passthrough' else 'pipeline'} x{workers}"
        log(f"{label}: starting (load {loadavg()})")
        run, feeder = self.start(kind, workers)
        try:
            n = self.args.articles
            batch = feeder.take(n)
            stages0 = run.stage_sums() if kind == "pipeline" else {}
            cpu0, bcpu0, load0 = run.cpu(), self.broker_cpu(), loadavg()
            spy = None
            t0 = time.perf_counter()
            if profile is not None:
                spy = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                     str(run.workers[0].pid), "-d", "3600", "-r", "200", "--gil",
                     "-f", "raw", "-o", str(profile)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            asyncio.run(_publish_fast(run.bootstrap, run.raw_topic, batch))
            published = time.perf_counter() - t0
            t1 = run.wait_done(feeder.next, 600)
            elapsed = t1 - t0
            cpu = run.cpu() - cpu0
            bcpu = self.broker_cpu() - bcpu0
            result: dict[str, Any] = {
                "kind": kind, "workers": workers, "articles": n,
                "seconds": round(elapsed, 3), "publish_seconds": round(published, 3),
                "articles_per_second": round(n / elapsed, 1),
                "worker_cpu_us_per_article": round(1e6 * cpu / n, 1),
                "worker_cpu_utilisation": round(cpu / elapsed, 2),
                "broker_cpu_us_per_article": round(1e6 * bcpu / n, 1),
                "load_before": load0, "load_after": loadavg()}
            if kind == "pipeline":
                stages1 = run.stage_sums()
                per_stage = {}
                for s in STAGES:
                    ds = stages1[s][0] - stages0[s][0]
                    dc = stages1[s][1] - stages0[s][1]
                    per_stage[s] = round(1e6 * ds / dc, 1) if dc else None
                # Wall time inside each agent's guarded block: its own code plus the awaited
                # send, during which the event loop runs the other agents.
                result["stage_wall_us_per_article"] = per_stage
                m = [scrape(w.port) for w in run.workers]
                result["alerts_per_article"] = round(sum(
                    mval(x, "wirewatch_alerts_total", kind="opened")
                    + mval(x, "wirewatch_alerts_total", kind="updated") for x in m)
                    / max(1, feeder.next), 2)
                result["exact_duplicates_dropped"] = int(sum(
                    mval(x, "wirewatch_duplicates_total", kind="exact") for x in m))
                result["per_worker_clean_received"] = [
                    int(mval(x, "wirewatch_articles_total", stage="clean", outcome="received"))
                    for x in m]
            if spy is not None and profile is not None:
                spy.send_signal(signal.SIGINT)  # the whole batch and nothing else: stop now
                spy.wait(60)
                result["profile"] = str(profile)
                with contextlib.suppress(OSError):
                    result["profile_summary"] = summarise_profile(profile)
            log(f"{label}: {result['articles_per_second']} articles/s, "
                f"{result['worker_cpu_us_per_article']} µs CPU/article")
            return result
        finally:
            run.stop()

    def latency(self, rate: float) -> dict[str, Any]:
        seconds = self.args.latency_seconds
        log(f"latency at {rate:.0f} articles/s for {seconds:.0f} s (load {loadavg()})")
        count = max(1, int(rate * seconds))
        out: dict[str, Any] = {"rate": round(rate, 1), "seconds": seconds, "articles": count}
        for kind in self.args.latency_kinds.split(","):
            run, feeder = self.start(kind, 1)
            try:
                batch = feeder.take(count)
                samples = asyncio.run(_paced(run, batch, rate, feeder.next))
            finally:
                run.stop()
            achieved = samples.pop("achieved_rate")
            out["achieved_rate"] = achieved
            for name, values in samples.items():
                out[("ceiling_" if kind == "passthrough" else "") + name] = summarise(values)
        out["load"] = loadavg()
        return out

    def memory(self) -> dict[str, Any]:
        total = self.args.memory_articles
        log(f"memory: {total} articles through one worker, dedup cap "
            f"{self.args.dedup_max_articles} (load {loadavg()})")
        run, feeder = self.start("pipeline", 1)
        base = feeder.next
        worker = run.workers[0]
        samples: list[tuple[float, int, int]] = []  # (t, done, rss)
        t0 = time.perf_counter()
        try:
            chunk = 500
            published = next_note = 0
            while True:
                done = run.done() - base
                samples.append((time.perf_counter() - t0, done, proc_rss_bytes(worker.pid)))
                if done * 20 // total > next_note:
                    next_note = done * 20 // total
                    log(f"  memory: {done}/{total} articles, RSS {samples[-1][2] / 2**20:.1f} MB, "
                        f"{samples[-1][0]:.0f} s (load {loadavg()})")
                if done >= total:
                    break
                if published < total and published - done < 4 * chunk:
                    size = min(chunk, total - published)
                    asyncio.run(_publish_fast(run.bootstrap, run.raw_topic, feeder.take(size)))
                    published += size
                else:
                    time.sleep(0.5)
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{worker.tail()}")
                if samples[-1][0] > 3 * 3600:
                    raise RuntimeError("memory run took over 3 hours")
            m = scrape(worker.port)
        finally:
            run.stop()
        elapsed = samples[-1][0]
        points = []
        for pct in range(10, 101, 10):
            want = total * pct / 100
            hit = next((s for s in samples if s[1] >= want), samples[-1])
            points.append({"percent": pct, "articles": hit[1], "rss_mb": round(hit[2] / 2**20, 1)})
        mid, end = points[4]["rss_mb"], points[-1]["rss_mb"]
        return {"articles": total, "seconds": round(elapsed, 1),
                "articles_per_second": round(total / elapsed, 1),
                "dedup_max_articles": self.args.dedup_max_articles,
                "dedup_window_articles_at_end": int(mval(m, "wirewatch_dedup_window_articles")),
                "open_alerts_at_end": int(mval(m, "wirewatch_open_alerts")),
                "rss_mb_start": round(samples[0][2] / 2**20, 1),
                "rss_mb": points, "rss_mb_peak": round(max(s[2] for s in samples) / 2**20, 1),
                "last_half_change": round((end - mid) / mid, 4) if mid else None,
                "load": loadavg()}


def core_costs(corpus: Corpus, watches: list[Any], count: int, dedup_max: int,
               batch_size: int = 256) -> dict[str, float]:
    """CPU µs per article of each stage's own code, in this process with no Kafka: the calls
    each agent makes around its pure core (decode, core, encode), over the first ``count``
    articles of the same replay; dedup in ``batch_size`` batches as its agent takes them at
    full speed. What the worker spends beyond their sum is Faust, aiokafka, asyncio, tables,
    the webhook agent, metrics."""
    from agents.alert.core import decide
    from agents.clean.core import clean
    from agents.dedup import DedupIndex
    from agents.dedup.index import prepare
    from agents.tag import Tagger
    from agents.watch.registry import WatchRegistry
    from streams.records import Article, decode

    tagger, registry = Tagger(), WatchRegistry(watches)
    index = DedupIndex(window_seconds=72 * 3600, max_articles=dedup_max)
    states: dict[str, dict[str, Any]] = {}
    spent = dict.fromkeys(STAGES, 0)
    clock = time.thread_time_ns
    feeder = Feeder(corpus)
    tagged: list[bytes] = []
    for key, raw in feeder.take(count):
        now = time.time()
        t0 = clock()
        article = clean(raw, key=key, received_at=now)
        article.stage_times["clean"] = now
        wire = encode(article)
        t1 = clock()
        article = tagger.tag(decode(Article, wire))
        article.watch_hits = registry.matcher.match(article)
        tagged.append(encode(article))
        spent["clean"] += t1 - t0
        spent["tag"] += clock() - t1
    stories: list[bytes] = []
    for start in range(0, len(tagged), batch_size):  # as the dedup agent takes them
        t2 = clock()
        chunk = [decode(Article, wire) for wire in tagged[start:start + batch_size]]
        for article, prepared in zip(chunk, prepare(chunk), strict=True):
            verdict = index.observe(article, time.time(), prepared=prepared)
            if verdict.kind != "exact_duplicate":
                article.story_id, article.duplicate_of = verdict.story_id, verdict.duplicate_of
                article.story = verdict.story
                stories.append(encode(article))
        spent["dedup"] += clock() - t2
    for wire in stories:
        t3 = clock()
        article = decode(Article, wire)
        story = states.setdefault(article.story_id or article.id, {})
        for hit in article.watch_hits:
            result = decide(story.get(hit.watch_id), article, hit, time.time())
            if result is not None:
                story[hit.watch_id], alert = result
                encode(alert)
        spent["alert"] += clock() - t3
    return {stage: round(ns / 1000 / count, 1) for stage, ns in spent.items()}


async def _paced(run: Run, batch: list[tuple[bytes, bytes]], rate: float, expect_done: int
                 ) -> dict[str, Any]:
    """Publish ``batch`` at ``rate``/s while reading the output topics (news.stories and
    news.alerts; pass.out for the ceiling); returns the latency samples (seconds)."""
    pipeline = run.kind == "pipeline"
    if pipeline:
        stories_t = topic_name(run.settings, "stories")
        topics = [stories_t, topic_name(run.settings, "alerts")]
        names: tuple[str, ...] = ("story_publish_to_record", "story_publish_to_receive",
                 "alert_publish_to_record", "alert_publish_to_receive", "hop_raw_to_clean",
                 "hop_clean_to_tag", "hop_tag_to_dedup", "hop_dedup_to_story_record",
                 "alert_publish_to_decision")
    else:
        stories_t, topics = "", [run.out_topic]
        names = ("publish_to_out_record", "publish_to_out_receive")
    samples: dict[str, list[float]] = {k: [] for k in names}
    sent_at: dict[bytes, float] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=run.bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        tps = [tp for t in topics for tp in await topic_partitions(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, acks=1, linger_ms=0)
        await producer.start()
        stop = asyncio.Event()

        async def pace() -> float:
            start = time.perf_counter()
            for i, (key, value) in enumerate(batch):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent_at[key] = time.time()
                await producer.send(run.raw_topic, key=key, value=value)
            await producer.flush()
            return len(batch) / (time.perf_counter() - start)

        def record(msg: Any, topic: str, now: float) -> None:
            out_ts = msg.timestamp / 1000
            if not pipeline:
                if msg.key in sent_at:
                    samples["publish_to_out_record"].append(out_ts - sent_at[msg.key])
                    samples["publish_to_out_receive"].append(now - sent_at[msg.key])
                return
            rec = orjson.loads(msg.value)
            received = float(rec.get("received_at") or 0)
            if topic == stories_t:
                if rec.get("id", "").encode() not in sent_at or received <= 0:
                    return
                samples["story_publish_to_record"].append(out_ts - received)
                samples["story_publish_to_receive"].append(now - received)
                st = rec.get("stage_times") or {}
                if {"clean", "tag", "dedup"} <= st.keys():
                    samples["hop_raw_to_clean"].append(st["clean"] - received)
                    samples["hop_clean_to_tag"].append(st["tag"] - st["clean"])
                    samples["hop_tag_to_dedup"].append(st["dedup"] - st["tag"])
                    samples["hop_dedup_to_story_record"].append(out_ts - st["dedup"])
            else:
                if rec.get("article_id", "").encode() not in sent_at or received <= 0:
                    return
                samples["alert_publish_to_record"].append(out_ts - received)
                samples["alert_publish_to_receive"].append(now - received)
                samples["alert_publish_to_decision"].append(
                    float(rec.get("updated_at") or out_ts) - received)

        async def consume() -> None:
            while not stop.is_set():
                got = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for tp, messages in got.items():
                    for msg in messages:
                        record(msg, tp.topic, now)

        reader = asyncio.create_task(consume())
        achieved = await pace()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, run.wait_done, expect_done, 600)
        await asyncio.sleep(2.0)  # let the reader catch the last records
        stop.set()
        await reader
        await producer.stop()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    return {"achieved_rate": round(achieved, 1), **samples}


def summarise(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * len(v)))], 4)

    return {"n": len(v), "p50": q(0.5), "p99": q(0.99), "max": round(v[-1], 4)}


_AGENTS = ("clean_agent", "tag_agent", "dedup_agent", "alert_agent", "webhook_agent")
_LIBS = ("faust", "aiokafka", "mode", "asyncio", "logging", "prometheus_client", "wordfreq",
         "ftfy", "orjson", "aiohttp", "selectolax", "numpy", "xxhash", "agents", "streams")


def summarise_profile(path: Path) -> dict[str, Any]:
    """A py-spy raw (folded) profile in shares of samples: inclusive per agent (and how much
    of that is inside Faust's send or table code), and self time per library."""
    total = 0
    agent: dict[str, int] = dict.fromkeys(_AGENTS, 0)
    agent_send: dict[str, int] = dict.fromkeys(_AGENTS, 0)
    lib: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        if frames[-1].startswith(("EpollSelector.select", "_worker (concurrent")):
            continue  # waiting, not working (py-spy --gil should leave these out anyway)
        total += count
        names = [f.split(" (", 1)[0] for f in frames]
        for a in _AGENTS:
            if a in names:
                agent[a] += count
                after = names[names.index(a) + 1:]
                if any(n.startswith(("Topic.send", "ManagedUserDict.__setitem__",
                                     "ManagedUserDict.pop", "Collection.", "Table."))
                       for n in after):
                    agent_send[a] += count
                break
        leaf = frames[-1]
        where = leaf.split(" (", 1)[1] if " (" in leaf else leaf
        key = "other"
        for name in _LIBS:
            if where.startswith((f"{name}/", f"{name}.py")) or f"/{name}/" in where:
                key = name
                break
        if key == "other" and where.startswith("agent.py"):
            key = "agents"
        lib[key] = lib.get(key, 0) + count
    share = (lambda n: round(n / total, 3)) if total else (lambda n: 0.0)
    return {"samples": total,
            "agent_inclusive": {a: share(n) for a, n in agent.items()},
            "agent_in_faust_send_or_table": {a: share(n) for a, n in agent_send.items()},
            "outside_agents": share(total - sum(agent.values())),
            "self_by_library": dict(sorted(((k, share(v)) for k, v in lib.items()),
                                           key=lambda kv: -kv[1]))}


# ------------------------------------------------------------------------------ report ---

def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 1)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _fmt(x: float | None) -> str:
    return f"{x:>9.3f}" if x is not None else f"{'-':>9}"


def render(res: dict[str, Any]) -> str:
    lines: list[str] = []
    cfg = res["config"]
    lines.append(f"wirewatch pipeline benchmark  {res['started_at']}  ({res['machine']['cpus']} CPUs, "
                 f"load before {res['machine']['load_before']}, after {res['machine']['load_after']})")
    lines.append(f"articles per throughput run {cfg['articles']} (+{cfg['warmup']} warm-up), "
                 f"repeats {cfg['repeats']}, watches {cfg['watches']}, "
                 f"dedup cap {cfg['dedup_max_articles']}, alert rate limit {cfg['alert_rate_limit']}")
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in cfg["latency_settings"].items()))
    tp = res.get("throughput")
    if tp:
        lines.append("")
        lines.append(f"{'throughput':<24}{'art/s (median)':>15}{'runs':>26}{'CPU µs/art':>12}"
                     f"{'broker µs/art':>15}{'vs ceiling':>12}")
        for key, label in (("ceiling", "ceiling (pass-through)"),
                           ("ceiling_2", "ceiling, 2 workers"),
                           ("pipeline_1", "pipeline, 1 worker"),
                           ("pipeline_2", "pipeline, 2 workers")):
            runs = tp.get(key) or []
            if not runs:
                continue
            ratio = tp["summary"].get(f"{key}_ratio") if key.startswith("pipeline") else None
            lines.append(f"{label:<24}{median_of(runs, 'articles_per_second'):>15}"
                         f"{' / '.join(str(r['articles_per_second']) for r in runs):>26}"
                         f"{median_of(runs, 'worker_cpu_us_per_article'):>12}"
                         f"{median_of(runs, 'broker_cpu_us_per_article'):>15}"
                         f"{(f'{ratio:.2f}' if ratio is not None else '-'):>12}")
        s = tp["summary"]
        core = res.get("core_us_per_article")
        if s.get("stage_wall_us_per_article"):
            lines.append("")
            lines.append(f"{'1 worker, µs/article':<34}" + "".join(f"{k:>9}" for k in STAGES)
                         + f"{'sum':>9}{'process':>9}{'rest':>9}")
            if core:
                lines.append(f"{'CPU, our code (in-process, no Kafka)':<34}"
                             + "".join(f"{core[k]:>9.0f}" for k in STAGES)
                             + f"{sum(core.values()):>9.0f}{s['worker_cpu_us_per_article']:>9.0f}"
                             + f"{s.get('framework_us_per_article', 0):>9.0f}")
            wall = s["stage_wall_us_per_article"]
            lines.append(f"{'wall in stage (histogram, + send)':<34}"
                         + "".join(f"{wall[k]:>9.0f}" for k in STAGES)
                         + f"{sum(wall.values()):>9.0f}")
            lines.append(f"alerts per article {s.get('alerts_per_article')}; two workers / one "
                         f"{s.get('two_worker_speedup')} (the pass-through's own: "
                         f"{s.get('ceiling_two_worker_speedup', '-')}); rest = process CPU - our code "
                         "(Faust, aiokafka, asyncio, tables, webhook agent, metrics)")
    prof = (res.get("profile_run") or {}).get("profile_summary")
    if prof:
        lines.append("")
        lines.append(f"profile of one worker (py-spy --gil, {prof['samples']} samples), share of "
                     "CPU: inclusive per agent (of which in Faust send/table code)")
        lines.append("  " + ", ".join(
            f"{a.removesuffix('_agent')} {v:.0%} ({prof['agent_in_faust_send_or_table'][a]:.0%})"
            for a, v in prof["agent_inclusive"].items())
            + f", outside agents (Faust/aiokafka consumer, producer, timers) "
              f"{prof['outside_agents']:.0%}")
        lines.append("  self time by library: " + ", ".join(
            f"{k} {v:.0%}" for k, v in list(prof["self_by_library"].items())[:9]))
    lat = res.get("latency")
    if lat:
        lines.append("")
        lines.append(f"latency at {lat['rate']} articles/s (achieved {lat['achieved_rate']}) for "
                     f"{lat['seconds']} s, one worker, seconds:")
        lines.append(f"  {'':<34}{'n':>7}{'p50':>9}{'p99':>9}{'max':>9}")
        for key in ("ceiling_publish_to_out_record", "story_publish_to_record",
                    "story_publish_to_receive",
                    "alert_publish_to_record", "alert_publish_to_receive",
                    "hop_raw_to_clean", "hop_clean_to_tag", "hop_tag_to_dedup",
                    "hop_dedup_to_story_record"):
            d = lat.get(key)
            if d is None:
                continue
            lines.append(f"  {key:<34}{d['n']:>7}{_fmt(d['p50'])}{_fmt(d['p99'])}{_fmt(d['max'])}")
    mem = res.get("memory")
    if mem:
        lines.append("")
        lines.append(f"memory: {mem['articles']} articles at {mem['articles_per_second']}/s, "
                     f"dedup window {mem['dedup_window_articles_at_end']}/{mem['dedup_max_articles']}"
                     f", open alerts {mem['open_alerts_at_end']}; RSS MB at 10..100 %:")
        lines.append("  " + "  ".join(f"{p['percent']}%:{p['rss_mb']}" for p in mem["rss_mb"]))
        change = mem["last_half_change"]
        lines.append(f"  start {mem['rss_mb_start']} MB, peak {mem['rss_mb_peak']} MB, change over "
                     f"the last half {100 * change:+.1f} %" if change is not None else "")
    lines.append("")
    lines.append("targets:")
    for name, t in res["targets"].items():
        lines.append(f"  {name:<28}{t['value']!s:>10}  target {t['target']:<10}{verdict(t['met'])}")
    return "\n".join(lines)


def targets(res: dict[str, Any]) -> dict[str, Any]:
    s = (res.get("throughput") or {}).get("summary", {})
    lat, mem = res.get("latency"), res.get("memory")
    p99 = lat["alert_publish_to_record"]["p99"] if lat and "alert_publish_to_record" in lat else None
    change = mem["last_half_change"] if mem else None

    def t(value: Any, target: str, ok: bool | None) -> dict[str, Any]:
        return {"value": value, "target": target, "met": ok}

    r1, sp = s.get("pipeline_1_ratio"), s.get("two_worker_speedup")
    return {
        "pipeline_vs_ceiling": t(r1, ">= 0.50", None if r1 is None else r1 >= 0.5),
        "p99_publish_to_alert_s": t(p99, "<= 0.100", None if p99 is None else p99 <= 0.1),
        "two_workers_vs_one": t(sp, ">= 1.6", None if sp is None else sp >= 1.6),
        "rss_last_half_change": t(change, "within 0.10",
                                  None if change is None else abs(change) <= 0.10),
    }


def summary(tp: dict[str, list[dict[str, Any]]], core: dict[str, float] | None
            ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ceil, p1, p2 = tp.get("ceiling") or [], tp.get("pipeline_1") or [], tp.get("pipeline_2") or []
    ceil2 = tp.get("ceiling_2") or []
    for key, runs in (("ceiling", ceil), ("ceiling_2", ceil2), ("pipeline_1", p1),
                      ("pipeline_2", p2)):
        if runs:
            out[f"{key}_articles_per_second"] = median_of(runs, "articles_per_second")
    # Ratios within each round (same load), then their median.
    if ceil and p1:
        out["pipeline_1_ratio"] = round(statistics.median(
            a["articles_per_second"] / c["articles_per_second"] for a, c in zip(p1, ceil, strict=False)), 3)
    if ceil and p2:
        out["pipeline_2_ratio"] = round(statistics.median(
            a["articles_per_second"] / c["articles_per_second"] for a, c in zip(p2, ceil, strict=False)), 3)
    if ceil and ceil2:  # what two processes can gain on this machine, framework alone
        out["ceiling_two_worker_speedup"] = round(statistics.median(
            b["articles_per_second"] / a["articles_per_second"]
            for a, b in zip(ceil, ceil2, strict=False)), 3)
    if p1 and p2:
        out["two_worker_speedup"] = round(statistics.median(
            b["articles_per_second"] / a["articles_per_second"] for a, b in zip(p1, p2, strict=False)), 3)
    if p1:
        out["stage_wall_us_per_article"] = {
            s: round(statistics.median(r["stage_wall_us_per_article"][s] or 0.0 for r in p1), 1)
            for s in STAGES}
        out["worker_cpu_us_per_article"] = median_of(p1, "worker_cpu_us_per_article")
        if core:
            out["framework_us_per_article"] = round(
                out["worker_cpu_us_per_article"] - sum(core.values()), 1)
        out["alerts_per_article"] = round(statistics.median(r["alerts_per_article"] for r in p1), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--broker", default=os.environ.get("WIREWATCH_BROKER_URL", ""),
                    help="kafka://host:port; empty starts the embedded broker")
    ap.add_argument("--articles", type=int, default=3000, help="articles per throughput run")
    ap.add_argument("--warmup", type=int, default=200, help="untimed articles before each run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--watches", type=int, default=1000)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--latency-rate", type=float, default=0.0,
                    help="articles/s for the latency run (default: half the 1-worker median)")
    ap.add_argument("--memory-articles", type=int, default=100_000)
    ap.add_argument("--dedup-max-articles", type=int, default=20_000)
    ap.add_argument("--linger-ms", type=int, default=2, help="WIREWATCH_PRODUCER_LINGER_MS")
    ap.add_argument("--commit-interval", type=float, default=2.8,
                    help="WIREWATCH_COMMIT_INTERVAL_SECONDS")
    ap.add_argument("--ceiling-fetch-max-wait-ms", type=int, default=0,
                    help="what-if: override Faust's hard-coded consumer fetch_max_wait_ms "
                         "(1500) in the pass-through app only")
    ap.add_argument("--latency-kinds", default="passthrough,pipeline",
                    help="which apps the latency part runs: passthrough, pipeline")
    ap.add_argument("--only", default="throughput,latency,memory",
                    help="comma list of parts: throughput, latency, memory")
    ap.add_argument("--configs", default="ceiling,ceiling2,1,2",
                    help="throughput configurations: ceiling, ceiling2 (the pass-through in two "
                         "workers), 1 (worker), 2 (workers)")
    ap.add_argument("--worker-log-level", default="info",
                    help="WIREWATCH_LOG_LEVEL of both apps (the default, info: at warning and "
                         "above Faust's worker turns the root logger to DEBUG for its spinner)")
    ap.add_argument("--profile", action="store_true",
                    help="one more 1-worker throughput run under py-spy for the whole batch "
                         "(--gil; raw folded stacks beside the JSON; not in the medians)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/)")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    configs = {p.strip() for p in args.configs.split(",") if p.strip()}

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or RESULTS / f"pipeline-{stamp}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.parent / f"logs-{stamp}"
    tmp.mkdir(parents=True, exist_ok=True)

    corpus = Corpus(args.data)
    watches = corpus.watches(args.watches)
    broker: EmbeddedKafka | None = None
    if args.broker:
        url = args.broker
    else:
        log("starting the embedded Kafka broker")
        broker = EmbeddedKafka.start(load_settings({}))
        url = broker.url
    bench = Bench(args, url, tmp, corpus, watches, broker.process.pid if broker else None)
    res: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_before": loadavg()},
        "config": {
            "data": str(args.data), "articles": args.articles, "warmup": args.warmup,
            "repeats": args.repeats, "watches": len(watches),
            "watch_examples": [w.query for w in watches[:8]],
            "dedup_max_articles": args.dedup_max_articles, "alert_rate_limit": 10**9,
            "memory_articles": args.memory_articles, "broker": "embedded Apache Kafka" if broker
            else url,
            "replay": "loop k>0: id '<id>~r<k>', text prefixed 'Update <k>: ' (near-duplicate, "
                      "not exact)",
            "latency_settings": {
                "producer_linger_ms": args.linger_ms,
                "commit_interval_s": args.commit_interval,
                "consumer_fetch_max_wait_ms": "1500 (hard-coded by Faust)" + (
                    f"; ceiling app overridden to {args.ceiling_fetch_max_wait_ms}"
                    if args.ceiling_fetch_max_wait_ms else ""),
                "fetch_min_bytes": 1,
                "publisher": "acks=1 linger_ms=0",
                "log_level": args.worker_log_level}},
    }
    try:
        if "throughput" in parts:
            count = min(2000, args.warmup + args.articles)
            log(f"our code in this process, no Kafka: {count} articles (load {loadavg()})")
            res["core_us_per_article"] = core = core_costs(corpus, watches, count,
                                                           args.dedup_max_articles)
            log(f"  {core}")
            tp: dict[str, list[dict[str, Any]]] = {"ceiling": [], "ceiling_2": [],
                                                   "pipeline_1": [], "pipeline_2": []}
            for rnd in range(args.repeats):
                log(f"round {rnd + 1}/{args.repeats}")
                if "ceiling" in configs:
                    tp["ceiling"].append(bench.throughput("passthrough", 1))
                if "ceiling2" in configs:
                    tp["ceiling_2"].append(bench.throughput("passthrough", 2))
                if "1" in configs:
                    tp["pipeline_1"].append(bench.throughput("pipeline", 1))
                if "2" in configs:
                    tp["pipeline_2"].append(bench.throughput("pipeline", 2))
            res["throughput"] = {**tp, "summary": summary(tp, core)}
            if args.profile:  # an extra run, not in the medians: sampling slows the worker
                res["profile_run"] = bench.throughput(
                    "pipeline", 1, profile=tmp / "pipeline_1.pyspy.txt")
        if "latency" in parts:
            rate = args.latency_rate or 0.5 * (
                res.get("throughput", {}).get("summary", {}).get("pipeline_1_articles_per_second")
                or 100.0)
            res["latency"] = bench.latency(rate)
        if "memory" in parts:
            res["memory"] = bench.memory()
    finally:
        for run in bench.runs:
            run.stop()  # after a failure: leave no worker behind
        if broker is not None:
            broker.stop()
    res["machine"]["load_after"] = loadavg()
    res["targets"] = targets(res)
    res["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    table = render(res)
    res["table"] = table
    out_path.write_text(json.dumps(res, indent=2, ensure_ascii=False))
    print(table)
    print(f"\nresults: {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

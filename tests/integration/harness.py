"""A real worker process against the embedded Kafka broker, for integration tests.

Each test gets its own topic prefix and consumer group (as faust's own broker tests do), so
tests share one broker without seeing each other's messages.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from streams.broker import EmbeddedKafka
from streams.client import from_the_start, publish, read_all
from streams.processes import spawn_worker, stop_process, wait_http
from streams.settings import Settings, load_settings
from streams.topics import ensure_topics, topic_name

T = TypeVar("T")


@dataclass
class Pipeline:
    """Topics under a private prefix on the shared broker, and the workers running on them."""

    broker: EmbeddedKafka
    tmp: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    workers: list[Any] = field(default_factory=list)
    started: int = 0

    def __post_init__(self) -> None:
        self.env = {**os.environ, "WIREWATCH_BROKER_URL": self.broker.url,
                    "WIREWATCH_TOPIC_PREFIX": self.prefix,
                    "WIREWATCH_APP_ID": f"wirewatch-{self.prefix.rstrip('.')}",
                    "WIREWATCH_LOG_LEVEL": "info", **self.env_extra}
        self.settings: Settings = load_settings(self.env)
        ensure_topics(self.settings)

    def topic(self, key: str) -> str:
        return topic_name(self.settings, key)

    def start_worker(self, **env: str) -> int:
        """Start one worker; returns its web port once /metrics answers."""
        self.started += 1
        log_path = self.tmp / f"worker{self.started}.log"
        process, port = spawn_worker({**self.env, **env}, log_path=log_path)
        self.workers.append((process, port, log_path))
        # /readyz: assigned and recovered. Faust skips messages that arrive while a worker is
        # still recovering (faust-streaming #596); streams/offsets.py reads them again within
        # seconds, and tests publish after readiness so they need not wait for it.
        if not wait_http(f"http://127.0.0.1:{port}/readyz", 90):
            raise AssertionError("worker did not become ready:\n" + self.log(-1))
        return port

    def log(self, index: int = 0) -> str:
        return self.workers[index][2].read_text(errors="replace")[-6000:]

    def stop_workers(self, *, kill: bool = False) -> None:
        for process, _, _ in self.workers:
            if kill:
                process.kill()
                process.wait(10)
            else:
                stop_process(process)
        self.workers.clear()

    def send(self, key: str, *values: bytes | None, keys: list[bytes | None] | None = None,
             timestamp: float | None = None) -> None:
        """Publish ``values``; ``timestamp``: their record time (unix seconds), else now."""
        pairs = list(zip(keys or [None] * len(values), values, strict=True))
        stamp = None if timestamp is None else int(timestamp * 1000)
        asyncio.run(publish(self.broker.bootstrap, self.topic(key), pairs, timestamp_ms=stamp))

    def records(self, key: str) -> list[tuple[bytes | None, bytes]]:
        return asyncio.run(read_all(self.broker.bootstrap, self.topic(key), idle_timeout=0.7))

    def positioned(self, key: str) -> dict[tuple[int, int], bytes | None]:
        """Every value on topic ``key`` by its (partition, offset)."""
        return asyncio.run(_positioned(self.broker.bootstrap, self.topic(key)))

    def json_records(self, key: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.records(key) if v is not None]

    def wait_for(self, key: str, check: Callable[[list[dict[str, Any]]], T],
                 timeout: float = 60.0) -> T:
        """Poll topic ``key`` until ``check(records)`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        records: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            records = self.json_records(key)
            result = check(records)
            if result:
                return result
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting on {self.topic(key)}; it holds "
                             f"{len(records)} records: {str(records)[:1500]}\n"
                             f"{self.diagnosis()}")

    def diagnosis(self) -> str:
        """The last worker's stage counters and log tail, for a failure message."""
        if not self.workers:
            return "no worker running"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.workers[-1][1]}/metrics",
                                        timeout=5) as resp:
                counters = [line for line in resp.read().decode().splitlines()
                            if line.startswith(("wirewatch_articles_total",
                                                "wirewatch_consumer_lag_messages"))
                            and not line.endswith(" 0.0")]
        except OSError as exc:
            counters = [f"metrics unavailable: {exc}"]
        return "worker metrics:\n" + "\n".join(counters) + "\nworker log:\n" + self.log(-1)

    def metric(self, name: str, labels: dict[str, str] | None = None, port: int | None = None
               ) -> float:
        port = port or self.workers[-1][1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in sorted((labels or {}).items()))
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{(.*?)\}})? (\S+)$", re.M)
        for found_labels, value in pattern.findall(text):
            have = ",".join(sorted(found_labels.split(","))) if found_labels else ""
            if have == want:
                return float(value)
        raise AssertionError(f"metric {name}{{{want}}} not exported")

    def wait_metric(self, name: str, labels: dict[str, str], at_least: float,
                    timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        value = 0.0
        while time.monotonic() < deadline:
            value = self.metric(name, labels)
            if value >= at_least:
                return value
            time.sleep(0.3)
        raise AssertionError(f"{name}{labels} stayed at {value} < {at_least}\n{self.log(-1)}")


async def _positioned(bootstrap: str, topic: str) -> dict[tuple[int, int], bytes | None]:
    async with from_the_start(bootstrap, topic) as (consumer, end):
        out: dict[tuple[int, int], bytes | None] = {}
        while [tp for tp in end if await consumer.position(tp) < end[tp]]:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.update({(m.partition, m.offset): m.value for m in messages})
        return out

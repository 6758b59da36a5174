"""The sources one process polls, and when: ``IngestManager``.

Ownership follows the partitions of ``news.sources`` that the consumer group gives this
process (the Faust agent tells the manager on every rebalance; ``wirewatch ingest --once``
takes them all):

- ``assign(partitions)``: the sources and states of newly given partitions are read from
  ``news.sources`` and ``news.ingest-state`` (``store.load_partitions``) before any of them
  is polled; partitions kept across the rebalance keep what they have in memory (Kafka's
  eager rebalance revokes everything first, and no one else owns a partition between its
  revocation here and its assignment here again).
- ``revoke(partitions)``: from now on ``owns`` is false for them, so a poll in flight stops
  before its next publish; the manager waits (up to ``revoke_timeout``) for those polls to
  end before the rebalance goes on, so the next owner reads a state that includes every
  batch they published. A poll still running then is cancelled: the next owner may publish
  its last batch again (at-least-once, same keys).
- ``apply_record``: a change on ``news.sources`` seen live by the agent. Records at offsets
  the start-up read already covered are skipped, so an old definition never overwrites a
  newer one.

``run()`` polls each owned source when its ``next_poll`` comes (at most ``concurrency``
at once; the fetcher's per-host limits apply on top), forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agents.ingest.poll import Poller
from agents.ingest.sources import Source, source_from_json
from agents.ingest.state import HEALTH, SourceState, health
from agents.ingest.store import Loaded
from streams.errors import BadRecord

__all__ = ["IngestManager", "Publisher"]

log = logging.getLogger("wirewatch.ingest")


class Publisher(Protocol):
    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None: ...

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None: ...


class _Sink:
    """The poller's view: the publisher's writes, and ownership from the manager."""

    def __init__(self, manager: IngestManager, publisher: Publisher) -> None:
        self._manager = manager
        self._publisher = publisher

    def owns(self, partition: int) -> bool:
        return self._manager.owns(partition)

    async def publish(self, messages: list[tuple[bytes, bytes]]) -> None:
        await self._publisher.publish(messages)

    async def save(self, partition: int, key: bytes, value: bytes | None) -> None:
        await self._publisher.save(partition, key, value)


class IngestManager:
    def __init__(self, poller: Poller, publisher: Publisher,
                 loader: Callable[[set[int]], Awaitable[Loaded]], *, concurrency: int = 8,
                 revoke_timeout: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.poller = poller
        self.sink = _Sink(self, publisher)
        self._publisher = publisher
        self._loader = loader
        self._clock = clock
        self.revoke_timeout = revoke_timeout
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self.owned: set[int] = set()  # partitions whose sources this process polls
        self._ready: dict[int, asyncio.Event] = {}  # set once a partition's state is read
        self.sources: dict[str, tuple[int, Source]] = {}
        self.states: dict[str, SourceState] = {}
        self._next_offset: dict[int, int] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._removed: set[str] = set()
        self._wake = asyncio.Event()
        self._loading: set[asyncio.Task[None]] = set()
        self.stopping = False

    # ------------------------------------------------------------------ ownership

    def owns(self, partition: int) -> bool:
        ready = self._ready.get(partition)
        return (not self.stopping and partition in self.owned and ready is not None
                and ready.is_set())

    async def assign(self, partitions: set[int]) -> None:
        """Own ``partitions`` (the whole new assignment); read what is new to us."""
        fresh = {p for p in partitions if p not in self._ready or not self._ready[p].is_set()}
        for partition in set(self._ready) - partitions:  # given to another process
            self._forget(partition)
        self.owned = set(partitions)
        events = {partition: asyncio.Event() for partition in fresh}
        self._ready.update(events)
        if fresh:
            task = asyncio.ensure_future(self._load(fresh, events))
            self._loading.add(task)
            task.add_done_callback(self._loading.discard)
        self._wake.set()

    async def _load(self, partitions: set[int], events: dict[int, asyncio.Event]) -> None:
        delay = 0.5
        while True:
            try:
                loaded = await self._loader(partitions)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest: reading the sources of partitions %s failed; retrying "
                              "in %.1f s", sorted(partitions), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        # Only partitions still ours by this very assignment (a newer rebalance may have
        # taken or re-given them meanwhile).
        current = {p for p in partitions if self._ready.get(p) is events[p]}
        for url, (partition, source) in loaded.sources.items():
            if partition not in current:
                continue
            self.sources[url] = (partition, source)
            self.states[url] = loaded.states.get(url) or SourceState(url)
        for partition in current:
            self._next_offset[partition] = loaded.next_offsets.get(partition, 0)
            events[partition].set()
        log.info("ingest: partitions %s: %d source(s) to poll", sorted(current),
                 sum(1 for p, _ in self.sources.values() if p in current))
        self._wake.set()

    def _forget(self, partition: int) -> None:
        self._ready.pop(partition, None)
        self._next_offset.pop(partition, None)
        for url in [u for u, (p, _) in self.sources.items() if p == partition]:
            self.sources.pop(url, None)
            self.states.pop(url, None)

    async def revoke(self, partitions: set[int]) -> None:
        """Stop polling ``partitions``; wait for their polls in flight (see the docstring)."""
        self.owned -= partitions
        tasks = [task for url, task in self._running.items()
                 if self.sources.get(url, (-1,))[0] in partitions]
        await self._drain(tasks, self.revoke_timeout)
        for partition in partitions:  # half-read: read again if given back
            if partition in self._ready and not self._ready[partition].is_set():
                self._forget(partition)
        if self._loading and not any(self._ready.get(p) and not self._ready[p].is_set()
                                     for p in self._ready):
            for task in list(self._loading):  # nothing left waiting for them
                task.cancel()

    async def _drain(self, tasks: list[asyncio.Task[None]], timeout: float) -> None:
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("ingest: %d poll(s) still running after %.0f s were cancelled; their "
                        "last batch may be published again by the next owner", len(pending),
                        timeout)
            await asyncio.wait(pending, timeout=5.0)

    async def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        self._wake.set()
        await self._drain(list(self._running.values()), timeout)

    # ------------------------------------------------------------------ live changes

    async def apply_record(self, partition: int, offset: int, key: bytes | None,
                           value: bytes | None) -> None:
        """A record the agent read from news.sources (``BadRecord`` if it is not one)."""
        ready = self._ready.get(partition)
        while ready is not None and not ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), timeout=1.0)
            if self._ready.get(partition) is not ready:
                return  # the partition went (or came back) meanwhile: its read covers this
        if ready is None or partition not in self.owned:
            return  # not ours (any more): the owner reads it at its start
        if offset < self._next_offset.get(partition, 0):
            return  # already part of what the start-up read
        self._next_offset[partition] = offset + 1
        if key is None:
            raise BadRecord("source record without a key (the key must be its URL)")
        url = key.decode("utf-8", "replace")
        if value is None:
            self._remove(url)
            return
        source = source_from_json(value)
        if source.url != url:
            raise BadRecord(f"source record key {url[:200]!r} differs from its url")
        before = self.sources.get(url)
        self.sources[url] = (partition, source)
        self._removed.discard(url)
        if before is None:
            self.states.setdefault(url, SourceState(url))
            log.info("ingest: source %s added (%s)", url, source.name or "no name")
        elif before[1] != source:
            log.info("ingest: source %s changed", url)
        self._wake.set()

    def _remove(self, url: str) -> None:
        if url not in self.sources:
            return
        log.info("ingest: source %s removed", url)
        if url in self._running:
            self._removed.add(url)  # its poll ends first; then the state goes
        else:
            self.sources.pop(url, None)
            self.states.pop(url, None)

    # ------------------------------------------------------------------ polling

    def due(self, now: float) -> list[str]:
        return sorted((url for url, (partition, _) in self.sources.items()
                       if url not in self._running and self.owns(partition)
                       and self.states[url].next_poll <= now),
                      key=lambda url: self.states[url].next_poll)

    def _start(self, url: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._poll(url))
        self._running[url] = task
        return task

    async def _poll(self, url: str) -> None:
        partition, source = self.sources[url]
        state = self.states[url]
        try:
            async with self._slots:
                if not self.owns(partition):
                    return
                try:
                    await self.poller.poll(source, state, partition, self.sink, self._clock())
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("ingest: polling %s failed unexpectedly", url)
                    state.next_poll = self._clock() + min(self.poller.config.interval_of(source),
                                                          60.0)
        finally:
            self._running.pop(url, None)
            if url in self._removed:
                self._removed.discard(url)
                self.sources.pop(url, None)
                self.states.pop(url, None)
                with contextlib.suppress(Exception):
                    await self._publisher.save(partition, url.encode(), None)
            self._wake.set()

    async def run(self, tick: float = 1.0) -> None:
        """Poll every owned source when it is due, until cancelled."""
        try:
            while not self.stopping:
                now = self._clock()
                for url in self.due(now):
                    self._start(url)
                nearest = min((self.states[u].next_poll for u, (p, _) in self.sources.items()
                               if u not in self._running and self.owns(p)), default=now + tick)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(),
                                           timeout=min(tick, max(0.05, nearest - now)))
        finally:
            await self.stop()

    async def poll_all_once(self) -> None:
        """Poll every owned source once now, whatever its schedule (``--once``)."""
        for event in self._ready.values():
            await event.wait()
        tasks = [self._start(url) for url, (p, _) in list(self.sources.items())
                 if self.owns(p) and url not in self._running]
        if tasks:
            await asyncio.gather(*tasks)

    # ------------------------------------------------------------------ reporting

    def status(self, failing_after: float) -> list[dict[str, Any]]:
        now = self._clock()
        rows = []
        for url, (partition, source) in sorted(self.sources.items()):
            state = self.states.get(url) or SourceState(url)
            rows.append(status_row(source, state, partition, now, failing_after,
                                   polling=url in self._running))
        return rows

    def health_counts(self, failing_after: float) -> tuple[dict[str, int], float]:
        """Owned sources by health, and the longest time since one last succeeded (or,
        never having succeeded, since its first poll)."""
        now = self._clock()
        counts = dict.fromkeys(HEALTH, 0)
        oldest = 0.0
        for url, (partition, _) in self.sources.items():
            if not self.owns(partition):
                continue
            state = self.states[url]
            counts[health(state, now, failing_after)] += 1
            since = state.last_success or state.first_poll
            if since is not None:
                oldest = max(oldest, now - since)
        return counts, oldest


def status_row(source: Source, state: SourceState, partition: int, now: float,
               failing_after: float, *, polling: bool = False) -> dict[str, Any]:
    return {
        "url": source.url, "name": source.name, "partition": partition,
        "health": health(state, now, failing_after), "polling": polling,
        "last_success": state.last_success, "last_poll": state.last_poll,
        "failing_since": state.failing_since, "failures": state.failures,
        "reason": state.reason, "detail": state.detail, "next_poll": state.next_poll,
        "seen": len(state.seen), "published": state.published,
        "interval": source.interval, "kind": source.kind,
    }

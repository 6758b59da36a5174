"""The current set of watches, and the matcher built over it.

Building a matcher for 100,000 compiled watches takes about 1.3 s (compiling them from scratch,
as at a worker's start, a few seconds more: ``stage`` compiles each watch as it arrives).
``WatchRegistry.apply`` rebuilds synchronously (fine for a handful of watches or tests); a
worker should call ``WatchRegistry.stage`` for each change it reads and then
``await registry.rebuild_async()`` once per batch (or ``await registry.apply_async(...)`` for
one change): the new matcher is built in ``asyncio.to_thread`` and swapped in as one attribute
assignment, so a match in progress never sees half an update and the event loop keeps running
while it builds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from agents.watch.match import WatchMatcher, _gc_paused
from agents.watch.plan import CompiledWatch, compile_watch
from streams.records import Watch

__all__ = ["WatchRegistry"]


class WatchRegistry:
    """The current set of watches; a change rebuilds the matcher and swaps it in whole,
    so a match in progress never sees half an update.

    ``apply`` rebuilds synchronously. In the worker use ``stage`` per change and
    ``await rebuild_async()`` per batch (or ``await apply_async``): the build runs in a
    thread and concurrent calls coalesce into as few builds as possible."""

    def __init__(self, watches: Iterable[Watch] = (), *, plurals: bool = False) -> None:
        self.plurals = plurals
        self._compiled: dict[str, CompiledWatch] = {}
        with _gc_paused():
            for w in watches:
                self._compiled[w.id] = compile_watch(w, plurals=plurals)
        self._version = 0
        self._built = 0
        self._lock: asyncio.Lock | None = None
        self.matcher = WatchMatcher(self._compiled.values())

    def stage(self, watch_id: str, watch: Watch | None) -> bool:
        """Record a change without rebuilding (validates; raises ``WatchError``); True if the
        set changed."""
        if watch is None:
            if self._compiled.pop(watch_id, None) is None:
                return False
        else:
            old = self._compiled.get(watch_id)
            if old is not None and old.watch == watch:
                return False
            self._compiled[watch_id] = compile_watch(watch, plurals=self.plurals)
        self._version += 1
        return True

    def rebuild(self) -> None:
        if self._built != self._version:
            version = self._version
            self.matcher = WatchMatcher(list(self._compiled.values()), previous=self.matcher)
            self._built = version

    def apply(self, watch_id: str, watch: Watch | None) -> None:
        """Add or replace a watch, or remove it (``None``: a tombstone on news.watches)."""
        if self.stage(watch_id, watch):
            self.rebuild()

    async def rebuild_async(self) -> None:
        """Build a matcher for every staged change in a worker thread, then swap it in."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        target = self._version
        async with self._lock:
            if self._built >= target:
                return  # a build that started after our change already covered it
            version = self._version
            snapshot = list(self._compiled.values())
            matcher = await asyncio.to_thread(WatchMatcher, snapshot, previous=self.matcher)
            if version > self._built:
                self.matcher = matcher
                self._built = version

    async def apply_async(self, watch_id: str, watch: Watch | None) -> None:
        """``apply`` with the rebuild off the event loop thread."""
        if self.stage(watch_id, watch):
            await self.rebuild_async()

    def get(self, watch_id: str) -> Watch | None:
        compiled = self._compiled.get(watch_id)
        return compiled.watch if compiled is not None else None

    def __len__(self) -> int:
        return len(self._compiled)

"""Types of the compiled kernel (kernel.pyx): see its docstring."""

from collections.abc import Callable
from typing import Any

OPCODES: dict[str, int]  # checked against agents.watch.plan.OPCODES on import

class Hits:
    pending: list[tuple[int, int]]  # (query, evidence bitmask) whose hits Python makes
    rest: list[int]  # woken queries Python walks
    keys: list[int]  # ids of the keys found
    woken: list[int] | None  # every woken query, when asked
    def merged(self, others: list[tuple[int, Any]]) -> list[Any]: ...

class Kernel:
    def __init__(self, key_ids: dict[str, int], wake: dict[str, list[int]], queries: list[Any],
                 members: list[list[tuple[int, str, str]]], watches: int, max_outcomes: int,
                 fold: Callable[[str], str], hit_type: Callable[[str, str, list[str]], Any]) -> None: ...
    @property
    def remembered(self) -> int: ...
    def remember(self, query: int, mask: int, hits: list[Any]) -> None: ...
    def outcomes(self) -> list[tuple[int, int, list[Any]]]: ...
    def match(self, title: str, text: str, meta: str, woken: bool = False) -> Hits: ...

"""The board's own settings, read like ``streams.settings`` (every variable carries the
``WIREWATCH_`` prefix, then ``BOARD_``); the broker, topic prefix and API token are the
pipeline's (``WIREWATCH_BROKER_URL``, ``WIREWATCH_TOPIC_PREFIX``, ``WIREWATCH_API_TOKEN``).

| variable | default | meaning |
|---|---|---|
| WIREWATCH_BOARD_HOST / _PORT | 127.0.0.1 / 6070 | where ``wirewatch board`` serves the page |
| WIREWATCH_BOARD_WINDOW_HOURS | 24 | alerts and story articles older than this leave the window |
| WIREWATCH_BOARD_MAX_ALERTS | 5000 | alerts held (each with its last ``MAX_REVISIONS`` revisions) |
| WIREWATCH_BOARD_MAX_REVISIONS | 32 | revisions of one alert kept for its history |
| WIREWATCH_BOARD_MAX_ARTICLES | 20000 | story articles held (from news.stories) |
| WIREWATCH_BOARD_METRICS_URLS | the local worker's | workers' /metrics (comma list) for the health strip |
| WIREWATCH_BOARD_SCRAPE_SECONDS | 5 | how often the health strip scrapes them |
| WIREWATCH_BOARD_MAX_CLIENTS | 200 | open live connections (server-sent events) at once |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from streams.errors import ConfigError
from streams.settings import PREFIX, Settings, read_environ

__all__ = ["BOARD_PREFIX", "BoardSettings", "load_board_settings"]

BOARD_PREFIX = PREFIX + "BOARD_"


@dataclass(frozen=True, slots=True)
class BoardSettings:
    host: str = "127.0.0.1"
    port: int = 6070
    window_hours: float = 24.0
    max_alerts: int = 5000
    max_revisions: int = 32
    max_articles: int = 20_000
    metrics_urls: str = ""
    scrape_seconds: float = 5.0
    max_clients: int = 200

    @property
    def window_seconds(self) -> float:
        return self.window_hours * 3600.0

    def metrics_targets(self, settings: Settings) -> list[str]:
        """The workers' /metrics URLs: the configured list, else the local worker's port."""
        if self.metrics_urls.strip():
            return [u.strip() for u in self.metrics_urls.split(",") if u.strip()]
        host = settings.web_host if settings.web_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return [f"http://{host}:{settings.web_port}/metrics"]


def load_board_settings(environ: Mapping[str, str] | None = None, **overrides: object
                        ) -> BoardSettings:
    """``BoardSettings`` from ``WIREWATCH_BOARD_*`` (``os.environ`` by default); keyword
    ``overrides`` that are not None win (the CLI's options)."""
    env = os.environ if environ is None else environ
    values = read_environ(BoardSettings, BOARD_PREFIX, env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    board = BoardSettings(**values)  # type: ignore[arg-type]
    for name in ("max_alerts", "max_revisions", "max_articles", "max_clients"):
        if getattr(board, name) < 1:
            raise ConfigError(f"{BOARD_PREFIX}{name.upper()} must be at least 1")
    if board.window_hours <= 0 or board.scrape_seconds <= 0:
        raise ConfigError(f"{BOARD_PREFIX}WINDOW_HOURS and _SCRAPE_SECONDS must be positive")
    if not 0 <= board.port <= 65535:
        raise ConfigError(f"{BOARD_PREFIX}PORT must be in 0-65535")
    return board

"""The CLI as a user meets it (subprocesses; no broker needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams.settings import Settings, load_settings


def _wirewatch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_demo_without_java_says_so_and_points_to_docker_compose(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env.update(PATH=str(tmp_path), PYTHONPATH=str(repo), WIREWATCH_CACHE_DIR=str(tmp_path))
    result = _wirewatch("demo", "--linger", "0", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "Java is not installed" in result.stderr
    assert "docker compose up" in result.stderr


def test_publish_without_any_broker_explains_what_to_do(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREWATCH_")}
    env.update(PYTHONPATH=str(repo), WIREWATCH_CACHE_DIR=str(tmp_path))
    article = tmp_path / "a.txt"
    article.write_text("Title\nBody")
    result = _wirewatch("publish", str(article), env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "WIREWATCH_BROKER_URL" in result.stderr


# ``wirewatch watch add`` in-process (click's CliRunner), with the broker-facing calls replaced
# by recorders: a bad watch must be refused before any of them is reached.


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import agents.watch.store as store
    import streams.cli as cli

    made: list[str] = []
    for name in [n for n in os.environ if n.startswith("WIREWATCH_")]:
        monkeypatch.delenv(name)

    def with_broker() -> Settings:
        made.append("connect")
        return load_settings({**os.environ, "WIREWATCH_BROKER_URL": "kafka://127.0.0.1:9"})

    async def publish(bootstrap: str, topic: str, messages: Any) -> int:
        made.extend(f"publish {topic} {value!r}" for _, value in messages)
        return 1

    def ensure_topics(settings: Settings, **kwargs: Any) -> None:
        made.append("ensure_topics")

    monkeypatch.setattr(cli, "_settings_with_broker", with_broker)
    monkeypatch.setattr(store, "publish", publish)
    monkeypatch.setattr(store, "ensure_topics", ensure_topics)
    return made


@pytest.mark.parametrize(("args", "reason"), [
    (["--rate-limit", "-1"], "between 1 and"),
    (["--rate-limit", "0"], "omit"),
    (["--rate-limit", str(2**63)], "between 1 and"),
    (["--webhook", "http://host:99999/"], "port 99999"),
    (["--webhook", "http://[::1/"], "IPv6"),
    (["--webhook", "ftp://example.org/x"], "http:// or https://"),
    (["--webhook", "http://10.0.0.1/hook"], "WIREWATCH_WEBHOOK_ALLOW"),  # the SSRF guard
    (["--webhook", "http://100.64.0.1/hook"], "WIREWATCH_WEBHOOK_ALLOW"),
    (["--digest-only"], "needs a digest"),
    (["--spike-hours", "0"], "spike_hours must be"),
])
def test_watch_add_refuses_a_bad_watch_before_connecting(calls: list[str], args: list[str],
                                                         reason: str) -> None:
    from streams.cli import main

    result = CliRunner().invoke(main, ["watch", "add", "Taiwan Strait", *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a ClickException
    assert re.search(reason, result.output), result.output
    assert result.output.startswith("Error: ")
    assert calls == [], "nothing connected or published"


def test_watch_add_publishes_the_signal_settings(calls: list[str]) -> None:
    from streams.cli import main

    result = CliRunner().invoke(main, [
        "watch", "add", "Taiwan Strait", "--priority", "flash", "--digest", "daily",
        "--digest-only", "--webhook-format", "teams", "--spike-hours", "6", "--trend-alerts"])
    assert result.exit_code == 0, result.output
    (published,) = [c for c in calls if c.startswith("publish")]
    for field in ('"priority":"flash"', '"digest":"daily"', '"live":false',
                  '"webhook_format":"teams"', '"spike_hours":6', '"trend_alerts":true'):
        assert field in published, published


def test_watch_add_refuses_a_bad_name_or_query(calls: list[str]) -> None:
    from streams.cli import main

    for args in (["Taiwan\x01Strait"], ["w", "bad (query"], ["x" * 201]):
        result = CliRunner().invoke(main, ["watch", "add", *args])
        assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
    assert calls == []


def test_watch_add_publishes_a_good_watch(calls: list[str]) -> None:
    from streams.cli import main

    result = CliRunner().invoke(main, ["watch", "add", "Taiwan Strait", "--rate-limit", "5",
                                       "--webhook", "http://93.184.215.14/hook"])
    assert result.exit_code == 0, result.output
    assert "added watch" in result.output
    assert calls[:2] == ["connect", "ensure_topics"] and len(calls) == 3
    assert "news.watches" in calls[2] and '"rate_limit":5' in calls[2]
    assert '"webhook_url":"http://93.184.215.14/hook"' in calls[2]


def test_watch_add_lets_webhook_allow_name_a_private_host(calls: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.cli import main

    monkeypatch.setenv("WIREWATCH_WEBHOOK_ALLOW", "10.0.0.0/8")
    result = CliRunner().invoke(main, ["watch", "add", "w", "--webhook", "http://10.0.0.1/"])
    assert result.exit_code == 0, result.output
    assert len(calls) == 3

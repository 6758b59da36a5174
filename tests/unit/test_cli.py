"""The CLI as a user meets it (subprocesses; no broker needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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

"""The embedded broker as a new user meets it: started by ``wirewatch worker`` (or
``wirewatch broker``) from an empty cache folder, and gone with its parent.

Each test runs the real command in a child process with no ``WIREWATCH_BROKER_URL`` and a
cache folder of its own that holds only the Kafka jars (linked from the session's cache, so
Maven is not asked again): nothing else an earlier run made, such as ``worker-data/``, is
there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.broker import ensure_kafka_jars
from streams.processes import free_port, stop_process, wait_http
from streams.settings import load_settings

KAFKA_MAIN = b"kafka.Kafka"


def _empty_cache(tmp: Path) -> Path:
    """A cache folder holding only the Kafka jars."""
    settings = load_settings()
    jars = ensure_kafka_jars(settings).parent  # .../kafka-<version>
    cache = tmp / "cache"
    cache.mkdir()
    (cache / jars.name).symlink_to(jars, target_is_directory=True)
    return cache


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WIREWATCH_BROKER_URL"}
    return {**env, "WIREWATCH_CACHE_DIR": str(cache), "WIREWATCH_LOG_LEVEL": "info", **extra}


def _children_running(parent: int, marker: bytes) -> list[int]:
    """Pids of live (not zombie) processes whose parent is ``parent`` and whose command line
    holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and marker in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already exited


def _wait_gone(pid: int, seconds: float) -> float | None:
    """Seconds until ``pid`` is gone, or None if it still runs after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not _alive(pid):
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def _kill_if_alive(pid: int) -> None:
    """Clean up after a failed test: the orphan must not outlive it."""
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _broker_of(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        pids = _children_running(process.pid, KAFKA_MAIN)
        if pids:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"no Kafka broker child after {timeout}s:\n{log.read_text()[-4000:]}")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.timeout(180)
def test_a_worker_starts_from_an_empty_cache_and_its_broker_dies_with_it(tmp_path: Path) -> None:
    cache = _empty_cache(tmp_path)
    port = free_port()
    log = tmp_path / "worker.log"
    worker = _spawn(["worker"], _env(cache, WIREWATCH_WEB_PORT=str(port)), log)
    broker = 0
    try:
        broker = _broker_of(worker, log)
        # Ready means Faust made its data folder under a worker-data/ nobody made before.
        assert wait_http(f"http://127.0.0.1:{port}/readyz", 90), log.read_text()[-4000:]
        assert (cache / "worker-data" / str(port)).is_dir()

        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        gone_after = _wait_gone(broker, 5.0)
        assert gone_after is not None, f"broker {broker} still runs 5 s after its worker died"
    finally:
        stop_process(worker)
        _kill_if_alive(broker)


@pytest.mark.timeout(120)
def test_wirewatch_broker_killed_with_9_leaves_no_java_behind(tmp_path: Path) -> None:
    cache = _empty_cache(tmp_path)
    log = tmp_path / "broker.log"
    process = _spawn(["broker"], _env(cache), log)
    broker = 0
    try:
        broker = _broker_of(process, log)
        deadline = time.monotonic() + 60
        while b"WIREWATCH_BROKER_URL=" not in log.read_bytes():
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.2)

        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert _wait_gone(broker, 5.0) is not None, f"broker {broker} outlived its parent by 5 s"
    finally:
        stop_process(process)
        _kill_if_alive(broker)


@pytest.mark.timeout(150)
def test_wirewatch_broker_stops_cleanly_on_sigterm_and_comes_back_on_its_port(
        tmp_path: Path) -> None:
    cache = _empty_cache(tmp_path)
    url_file = cache / "embedded-broker.url"
    urls = []
    for run in range(2):
        log = tmp_path / f"broker{run}.log"
        process = _spawn(["broker"], _env(cache), log)
        broker = 0
        try:
            broker = _broker_of(process, log)
            deadline = time.monotonic() + 60
            while not url_file.exists():
                assert time.monotonic() < deadline and process.poll() is None, log.read_text()
                time.sleep(0.2)
            urls.append(url_file.read_text().strip())

            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, log.read_text()[-3000:]
            assert not _alive(broker), "SIGTERM left the broker running"
            assert not url_file.exists(), "SIGTERM left the URL file behind"
        finally:
            stop_process(process)
            _kill_if_alive(broker)
    # Same data folder, same address: workers holding the URL reconnect.
    assert urls[0] == urls[1], urls

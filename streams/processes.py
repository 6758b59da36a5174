"""Child processes and ports: start a worker, wait for it, stop it.

One home for what the CLI, the demo, the benchmarks and the test harness all do with
processes (they used to take these from the CLI module, which made the layers point both
ways). Only the standard library: this module sits at the bottom with settings and records.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "spawn_worker", "stop_process", "wait_for_port", "wait_http"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, *, host: str = "127.0.0.1") -> bool:
    """True once something listens on ``host:port``, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def wait_http(url: str, timeout: float) -> bool:
    """True once ``url`` answers 2xx/3xx, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:  # not listening yet, or 503 from /readyz
            time.sleep(0.1)
    return False


def spawn_worker(env: dict[str, str], *, web_port: int | None = None,
                 log_path: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``wirewatch worker`` as a child in its own session; returns it and its web port."""
    port = web_port or free_port()
    env = {**env, "WIREWATCH_WEB_PORT": str(port)}
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, port


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

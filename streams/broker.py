"""The embedded broker: a real Apache Kafka node in KRaft mode, started on free loopback ports.

Why real Kafka and not a Kafka-compatible stand-in: tests and the demo must exercise the same
broker semantics as production (idempotent producer, transactions, correct high-watermarks
for table recovery, prompt group joins). The jars come from Maven Central through the
machine's ``mvn`` into ``$WIREWATCH_CACHE_DIR/kafka-<version>/libs`` once, and run on the
machine's Java 17. The node is broker and controller at once, replication factors 1 and
``group.initial.rebalance.delay.ms=0`` so a worker joins its group at once.

    with EmbeddedKafka.start(settings) as kafka:
        print(kafka.bootstrap)   # "127.0.0.1:PORT"
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from streams.errors import BrokerError
from streams.processes import free_port, wait_for_port
from streams.settings import Settings

__all__ = ["EmbeddedKafka", "ensure_kafka_jars", "java_available"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>wirewatch</groupId><artifactId>embedded-kafka</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.controller=WARN
"""


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` for the broker: in the child, before exec, ask Linux to SIGKILL it
    when the process that started it dies, so a worker killed with -9 never leaves an
    orphan broker holding its ports and data folder. SIGKILL, not SIGTERM: a TERM starts
    Kafka's orderly shutdown, which can take many seconds; Kafka recovers its logs from an
    unclean stop on the next start, as after a power cut.

    The death signal follows the *thread* that forked, so brokers are started from the main
    thread. If the parent died between fork and prctl, the signal would never come: the
    child checks its parent is still the one that forked it and exits if not."""

    def arm() -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            return  # not Linux: stop() still runs on every normal exit
        if os.getppid() != parent_pid:
            os._exit(1)

    return arm


def java_available() -> bool:
    return shutil.which("java") is not None


def ensure_kafka_jars(settings: Settings) -> Path:
    """Fetch the Kafka jars with Maven once; return the folder that holds them."""
    libs = Path(settings.cache_dir) / f"kafka-{settings.kafka_version}" / "libs"
    if (libs / f"kafka_2.13-{settings.kafka_version}.jar").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars; install it, or "
                          "set WIREWATCH_BROKER_URL to an existing broker, or run "
                          "`docker compose up`.")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent) as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(_POM.format(version=settings.kafka_version))
        staging = Path(work) / "libs"
        log.info("fetching Apache Kafka %s jars with Maven (first run only)",
                 settings.kafka_version)
        # Java takes its user.home from the password file, not $HOME: pass $HOME, so Maven's
        # repository (~/.m2) is the one of the home this process runs with (a fresh HOME on
        # CI is then really fresh).
        result = subprocess.run(
            [mvn, "-q", "-B", f"-Duser.home={Path.home()}", "-f", str(pom),
             "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            capture_output=True, text=True, timeout=900, check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"mvn could not fetch Kafka {settings.kafka_version}:\n"
                              f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        if libs.exists():  # another process won the race
            return libs
        staging.rename(libs)
    return libs


def _ports(data_dir: Path, fresh: bool) -> tuple[int, int]:
    """The broker and controller ports. A persistent data folder keeps its ports across
    restarts (in ``ports``), so workers and clients holding the broker's URL reconnect
    when it comes back; new ones are taken only when the old ones are in use."""
    saved = data_dir / "ports"
    if not fresh and saved.exists():
        try:
            port, controller = (int(p) for p in saved.read_text().split())
        except ValueError:
            pass  # unreadable: take new ones
        else:
            if _bindable(port) and _bindable(controller):
                return port, controller
            log.warning("embedded broker ports %d/%d are taken; using new ones", port,
                        controller)
    port, controller = free_port(), free_port()
    saved.write_text(f"{port} {controller}\n")
    return port, controller


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={data_dir / 'logs'}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        # Small segments so compaction of changelogs is exercised in tests, not just in prod.
        "log.segment.bytes=67108864",
        "message.max.bytes=10485760",
        "",
    ])


@dataclass
class EmbeddedKafka:
    """A running single-node Kafka; use ``EmbeddedKafka.start`` (also a context manager)."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    _owns_data_dir: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @classmethod
    def start(cls, settings: Settings, *, data_dir: Path | None = None,
              timeout: float = 60.0) -> EmbeddedKafka:
        """Start a broker; with no ``data_dir`` its data lives in a temporary folder."""
        if not java_available():
            raise BrokerError(
                "Java is not installed, so the embedded Apache Kafka broker cannot run. "
                "Install a Java 17 runtime, point WIREWATCH_BROKER_URL at a broker, or run "
                "`docker compose up` (Kafka, worker, Prometheus and Grafana).")
        libs = ensure_kafka_jars(settings)
        owns = data_dir is None
        data_dir = Path(tempfile.mkdtemp(prefix="wirewatch-kafka-")) if owns else data_dir
        assert data_dir is not None
        data_dir.mkdir(parents=True, exist_ok=True)
        port, controller_port = _ports(data_dir, owns)
        config = data_dir / "server.properties"
        config.write_text(_server_properties(data_dir, port, controller_port))
        (data_dir / "log4j.properties").write_text(_LOG4J)
        java = [shutil.which("java") or "java", "-Xms128m", "-Xmx768m",
                "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{data_dir / 'log4j.properties'}",
                "-cp", f"{libs}/*"]
        cls._format_storage(java, config, data_dir)
        log_path = data_dir / "kafka.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(java + ["kafka.Kafka", str(config)], stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_die_with_parent(os.getpid()))
        broker = cls(process, port, data_dir, log_path, owns)
        if not wait_for_port(port, timeout) or process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            broker.stop()
            raise BrokerError(f"embedded Kafka did not start within {timeout:.0f}s:\n{tail}")
        log.info("embedded Apache Kafka %s on %s (data in %s)", settings.kafka_version,
                 broker.bootstrap, data_dir)
        return broker

    @staticmethod
    def _format_storage(java: list[str], config: Path, data_dir: Path) -> None:
        if (data_dir / "logs" / "meta.properties").exists():
            return  # formatted on an earlier start: keep the data
        cid = "-"
        while cid.startswith("-"):  # a leading "-" reads as an option to kafka-storage
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(java + ["kafka.tools.StorageTool", "format", "-t", cid, "-c",
                                        str(config)],
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedKafka:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

"""Run a real single-node Apache Kafka 4.x broker (KRaft) from Maven Central jars.

No Docker needed: the broker jars are fetched once with Maven (``kafka/pom.xml``
next to this module) into a cache directory, and the broker runs as a plain
``java`` subprocess bound to 127.0.0.1 on free ports. Its data is in a fresh
temporary directory that is removed on stop, or, given ``data_dir``, in that
folder, kept: a broker restarted on it (after a stop or a crash) has every topic
and offset it had. ``tajo-events kafka`` keeps its broker in ``$TAJO_DATA_DIR/kafka``.

Needs Java 17+ (``JAVA_HOME`` or ``java`` on ``PATH``) and, for the first
fetch only, ``mvn``.

    with LocalKafka(num_partitions=4) as kafka:
        print(kafka.bootstrap_servers)      # "127.0.0.1:40123"

Foreground use: ``python -m tajo_events.kafka_local --port 9092 [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from tajo_events.settings import data_dir_from_env

__all__ = [
    "KAFKA_VERSION",
    "KafkaLocalError",
    "LocalKafka",
    "broker_available_via_docker",
    "default_cache_dir",
    "default_data_dir",
    "ensure_jars",
    "find_java",
    "java_major_version",
    "main",
]

RESOURCE_DIR = Path(__file__).resolve().parent / "kafka"
POM_PATH = RESOURCE_DIR / "pom.xml"
LOG4J_CONFIG = RESOURCE_DIR / "log4j2.properties"
MIN_JAVA = 17
READY_LINE = "Kafka Server started"
_MARKER = ".complete"


class KafkaLocalError(RuntimeError):
    """The local broker could not be fetched, started or reached."""


def _kafka_version() -> str:
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", POM_PATH.read_text())
    if match is None:
        raise KafkaLocalError(f"no <kafka.version> property in {POM_PATH}")
    return match.group(1)


KAFKA_VERSION = _kafka_version()


# --------------------------------------------------------------------------- jars


def default_data_dir() -> Path:
    """Return the folder `tajo-events kafka` keeps its broker in: ``$TAJO_DATA_DIR/kafka``."""
    return data_dir_from_env(os.environ) / "kafka"


def default_cache_dir() -> Path:
    """Return the folder that holds ``libs/``: ``$TAJO_KAFKA_CACHE`` or ``~/.cache/tajo-events/kafka-<v>``."""
    env = os.environ.get("TAJO_KAFKA_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tajo-events" / f"kafka-{KAFKA_VERSION}"


def _pom_digest() -> str:
    return hashlib.sha256(POM_PATH.read_bytes()).hexdigest()


def _jars_ready(cache_dir: Path, digest: str) -> bool:
    marker = cache_dir / _MARKER
    try:
        return marker.read_text().strip() == digest and (cache_dir / "libs").is_dir()
    except OSError:
        return False


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """Fetch the broker jars once and return the ``libs`` folder that holds them.

    ``cache_dir`` (default :func:`default_cache_dir`) gets ``libs/`` and a marker
    file that records the pom's digest; a changed pom fetches again. A lock file
    serialises concurrent callers, and jars are copied into a temporary folder
    that is renamed into place, so a crash never leaves a half-filled ``libs``.
    """
    cache_dir = (cache_dir or default_cache_dir()).expanduser().resolve()
    libs = cache_dir / "libs"
    digest = _pom_digest()
    if _jars_ready(cache_dir, digest):
        return libs
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if _jars_ready(cache_dir, digest):  # another process fetched meanwhile
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLocalError(
                "Maven ('mvn') is needed once to fetch the Kafka broker jars into "
                f"{cache_dir}; install it (e.g. apt-get install maven) or set "
                "KAFKA_BOOTSTRAP_SERVERS to an existing broker"
            )
        work = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache_dir))
        try:
            shutil.copy2(POM_PATH, work / "pom.xml")  # mvn may write next to the pom
            cmd = [
                mvn,
                "-q",
                "-B",
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={work / 'libs'}",
                "-DincludeScope=runtime",
            ]
            proc = subprocess.run(  # noqa: S603 - mvn from PATH, our own arguments
                cmd,
                cwd=work,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            jars = list((work / "libs").glob("*.jar"))
            if proc.returncode != 0 or not jars:
                out = _tail(proc.stdout + proc.stderr, 40)
                raise KafkaLocalError(f"fetching Kafka jars failed ({' '.join(cmd)}):\n{out}")
            if libs.exists():
                shutil.rmtree(libs)
            (work / "libs").rename(libs)
            tmp_marker = cache_dir / f"{_MARKER}.{os.getpid()}"
            tmp_marker.write_text(digest + "\n")
            tmp_marker.replace(cache_dir / _MARKER)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


# --------------------------------------------------------------------------- java


def find_java() -> str:
    """Return the ``java`` executable: ``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLocalError(
            f"no 'java' found: the local Kafka broker needs a JDK {MIN_JAVA}+ "
            "(set JAVA_HOME or put java on PATH, e.g. apt-get install openjdk-17-jre-headless)"
        )
    return found


def java_major_version(java: str) -> int:
    """Return the major version that ``java -version`` tells (8 for "1.8.0_x")."""
    try:
        proc = subprocess.run(  # noqa: S603 - java found by find_java
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaLocalError(f"could not run '{java} -version': {exc}") from exc
    text = proc.stderr + proc.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        raise KafkaLocalError(f"cannot read the Java version from '{java} -version':\n{text}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def _checked_java() -> str:
    java = find_java()
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise KafkaLocalError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}; "
            "set JAVA_HOME to a newer JDK"
        )
    return java


# --------------------------------------------------------------------------- helpers


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _read_tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Whether a listener could bind the port now.

    As the broker's own listener does (Java sets SO_REUSEADDR), connections of a killed broker left in
    TIME_WAIT do not count: without it, a broker killed while clients were connected could not be
    started again on its port for a minute.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_id() -> str:
    """Make a random Kafka cluster id: url-safe base64 of a UUID without padding.

    Never one that starts with "-": the storage tool would read it as an option (as Kafka's own
    `Uuid.randomUuid()` avoids too).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _api_versions_ok(port: int, timeout: float = 2.0) -> bool:
    """Tell whether the broker answers an ApiVersions (v0) request without error."""
    client_id = b"tajo-local-kafka"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(sock, 4)
            (size,) = struct.unpack(">i", head)
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    if len(payload) < 6:
        return False
    correlation_id, error_code = struct.unpack(">ih", payload[:6])
    return bool(correlation_id == 1 and error_code == 0)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


# --------------------------------------------------------------------------- broker


class LocalKafka:
    """A single-node KRaft Kafka broker in a subprocess, bound to 127.0.0.1.

    ``port``/``controller_port`` default to free ports. ``start()`` blocks until
    the broker answers (or raises :class:`KafkaLocalError` with the log tail);
    ``stop()`` ends it (SIGTERM, then SIGKILL) and removes its temporary folder.
    ``kill()`` SIGKILLs it but keeps the data, so a later ``start()`` restarts the
    same broker on the same ports with its topics and offsets.

    ``data_dir`` puts the broker in that folder instead, never removed: its KRaft
    storage is formatted on the first start only (an existing ``meta.properties``
    keeps its cluster id), so any later broker on it, in this process or another,
    has every topic and offset. Topics are never auto-created.
    """

    def __init__(  # noqa: PLR0913 - keyword-only options
        self,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        num_partitions: int = 1,
        heap: str = "512M",
        startup_timeout: float = 90.0,
        cache_dir: Path | None = None,
        extra_config: Mapping[str, str] | None = None,
        keep_dir: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        self._want_port = port
        self._want_controller_port = controller_port
        self.num_partitions = num_partitions
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.cache_dir = cache_dir
        self.extra_config = dict(extra_config or {})
        self.keep_dir = keep_dir
        self.data_dir = data_dir.expanduser().resolve() if data_dir is not None else None
        self.port: int | None = None
        self.controller_port: int | None = None
        self.dir: Path | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._formatted = False
        self._lock = threading.Lock()

    # -- public properties

    @property
    def bootstrap_servers(self) -> str:
        """Return ``"127.0.0.1:<port>"`` for Kafka clients."""
        if self.port is None:
            raise KafkaLocalError("the broker has not been started")
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Return the broker's log file (stdout and stderr of the JVM)."""
        if self.dir is None:
            raise KafkaLocalError("the broker has not been started")
        return self.dir / "broker.log"

    @property
    def pid(self) -> int | None:
        """Return the broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """Tell whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the broker log."""
        return _read_tail(self.log_path, lines) if self.dir is not None else "(no log)"

    # -- lifecycle

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Start the broker (or restart it after :meth:`kill`) and wait until it answers."""
        with self._lock:
            if self.is_running():
                return self
            java = _checked_java()
            libs = ensure_jars(self.cache_dir)
            auto_ports = self._want_port is None and self._want_controller_port is None
            attempts = 3 if auto_ports and self.port is None else 1
            for attempt in range(attempts):
                try:
                    self._start_once(java, libs)
                    return self
                except KafkaLocalError:
                    in_use = "Address already in use" in self.log_tail(200)
                    if not (in_use and attempt + 1 < attempts):
                        self._cleanup(remove_dir=not self.keep_dir)
                        raise
                    self._cleanup(remove_dir=True)  # port race lost: new ports (and a new temporary dir)
            raise AssertionError("unreachable")

    def _start_once(self, java: str, libs: Path) -> None:
        if self.dir is None:
            if self.data_dir is None:
                self.dir = Path(tempfile.mkdtemp(prefix="tajo-kafka-"))
            else:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self.dir = self.data_dir
            # A kept folder formatted by an earlier run keeps its cluster id, topics and offsets.
            self._formatted = (self.dir / "data" / "meta.properties").is_file()
        if self.port is None:
            self._pick_ports()
            self._write_config()
        if self.port is None:
            raise KafkaLocalError("no port chosen")
        classpath = f"{libs}/*"
        props = self.dir / "server.properties"
        logging_opts = [
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.dir / 'logs'}",
            "-Djava.awt.headless=true",
        ]
        if not self._formatted:
            fmt = subprocess.run(  # noqa: S603 - java found by find_java
                [
                    java,
                    "-Xmx256M",
                    *logging_opts,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    _cluster_id(),
                    "-c",
                    str(props),
                    "--standalone",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if fmt.returncode != 0:
                raise KafkaLocalError(
                    f"kafka-storage format failed (exit {fmt.returncode}):\n"
                    + _tail(fmt.stdout + fmt.stderr, 40)
                )
            self._formatted = True
        started = time.monotonic()
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - java found by find_java
                [
                    java,
                    f"-Xmx{self.heap}",
                    "-Xms256M",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    *logging_opts,
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
            )
        atexit.register(self._atexit)
        self._wait_ready(started, log_start)
        self.startup_seconds = time.monotonic() - started

    def _pick_ports(self) -> None:
        port = self._want_port or _free_port()
        controller = self._want_controller_port
        if controller is None and self._formatted:
            controller = self._previous_controller_port(port)
        if controller is None:
            controller = port + 1 if self._want_port and _port_is_free(port + 1) else 0
            while controller in (0, port):
                controller = _free_port()
        if controller == port:
            raise KafkaLocalError("port and controller_port must differ")
        self.port, self.controller_port = port, controller

    def _previous_controller_port(self, port: int) -> int | None:
        """The controller port an earlier run of this folder used, if it is free: the voter it recorded."""
        if self.dir is None:
            return None
        try:
            text = (self.dir / "server.properties").read_text()
        except OSError:
            return None
        match = re.search(r"^controller\.quorum\.bootstrap\.servers=[^:\n]*:(\d+)\s*$", text, re.MULTILINE)
        if match is None:
            return None
        previous = int(match.group(1))
        return previous if previous != port and _port_is_free(previous) else None

    def _write_config(self) -> None:
        if self.dir is None:
            raise KafkaLocalError("no broker folder")
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": (f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.dir / "data"),
            "num.partitions": str(self.num_partitions),
            # Topics are created by the services (`ensure_topics`) with their partition counts; a client
            # that names a missing topic must not create it with `num.partitions`.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # The Kafka default: workers that start together form one generation, not two in a row.
            "group.initial.rebalance.delay.ms": "3000",
            # Let test clients use short group session timeouts (Faust: broker_session_timeout).
            "group.min.session.timeout.ms": "1000",
            # A broker restarted after kill() re-registers once its old session expires (default 9 s).
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
        }
        config.update(self.extra_config)
        text = "".join(f"{key}={value}\n" for key, value in config.items())
        (self.dir / "server.properties").write_text(text)

    def _wait_ready(self, started: float, log_start: int) -> None:
        if self._proc is None or self.port is None:
            raise KafkaLocalError("the broker process was not started")
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise KafkaLocalError(
                    f"Kafka broker exited with code {code} while starting; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self._logged_since(log_start, READY_LINE) and _api_versions_ok(self.port):
                return
            time.sleep(0.2)
        raise KafkaLocalError(
            f"Kafka broker did not answer on {self.bootstrap_servers} within "
            f"{self.startup_timeout:.0f}s; log {self.log_path}:\n{self.log_tail()}"
        )

    def _logged_since(self, offset: int, text: str) -> bool:
        """Tell whether ``text`` is in the broker log after byte ``offset`` (this run only)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return text.encode() in log.read()
        except OSError:
            return False

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the broker (a crash); the data stays so ``start()`` can restart it."""
        if self._proc is not None:
            self._signal(signal.SIGKILL)
            self._proc.wait()
            self._proc = None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``timeout`` s) and remove its folder."""
        with self._lock:
            self._cleanup(remove_dir=not self.keep_dir, timeout=timeout)

    def _cleanup(self, *, remove_dir: bool, timeout: float = 20.0) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    self._proc.wait()
            self._proc = None
        atexit.unregister(self._atexit)
        if remove_dir and self.dir is not None and self.data_dir is None:  # a given data_dir is kept
            shutil.rmtree(self.dir, ignore_errors=True)
        if remove_dir:
            self.dir = None
            self._formatted = False
            self.port = self.controller_port = None

    def _atexit(self) -> None:
        self._cleanup(remove_dir=not self.keep_dir, timeout=10.0)


# --------------------------------------------------------------------------- docker


def broker_available_via_docker(timeout: float = 5.0) -> bool:
    """Tell whether a Docker engine answers: ``docker info`` exits 0 within ``timeout`` seconds."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        proc = subprocess.run(  # noqa: S603 - docker from PATH
            [docker, "info"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="tajo-events kafka",
        description=f"Run a local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft).",
    )
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft controller port (default port+1 if free, else any free port)",
    )
    parser.add_argument("--partitions", type=int, default=1, help="num.partitions (default 1)")
    parser.add_argument("--heap", default="512M", help="JVM max heap (default 512M)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the broker's folder (log, config, its own log file), kept across crashes and restarts "
        "(default $TAJO_DATA_DIR/kafka, i.e. .tajo-data/kafka); delete it to start empty",
    )
    where.add_argument(
        "--temporary",
        action="store_true",
        help="run an empty broker in a temporary folder, removed on exit",
    )
    args = parser.parse_args(argv)
    data_dir = None if args.temporary else (args.data_dir or default_data_dir())

    if not _port_is_free(args.port):
        print(f"port 127.0.0.1:{args.port} is in use", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_int = signal.signal(signal.SIGINT, on_signal)
    kafka = LocalKafka(
        port=args.port,
        controller_port=args.controller_port,
        num_partitions=args.partitions,
        heap=args.heap,
        data_dir=data_dir,
    )
    try:
        try:
            kafka.start()
        except KafkaLocalError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        kept = "kept across restarts" if data_dir is not None else "removed on exit"
        print(
            f"Kafka {KAFKA_VERSION} ready in {kafka.startup_seconds:.1f}s at {kafka.bootstrap_servers} "
            f"(broker pid {kafka.pid}; data and log in {kafka.dir}, {kept}); Ctrl-C stops it",
            flush=True,
        )
        print(f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap_servers}", flush=True)
        while not stop.wait(0.5):
            if not kafka.is_running():
                print(f"error: the broker died:\n{kafka.log_tail()}", file=sys.stderr)
                return 1
        print("stopping Kafka ...", flush=True)
        return 0
    finally:
        kafka.stop()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


if __name__ == "__main__":
    sys.exit(main())

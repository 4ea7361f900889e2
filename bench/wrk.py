"""Load from `wrk` (a Debian package), pinned to a core of its own, and the servers it loads.

Every benchmark over HTTP goes through here: a server process pinned to one CPU, `wrk` with one
thread pinned to another, a warm-up run that is not measured, then the measured run. The wrk
scripts under `bench/lua/` write the run's figures (and, for POSTs, the id of every event that got a
200) as JSON, so a benchmark can check the log against what was acknowledged.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

LUA = Path(__file__).resolve().parent / "lua"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 90.0
_TASKSET = shutil.which("taskset") or "taskset"
STOP_TIMEOUT_S = 30.0


def cpus() -> tuple[int, int]:
    """The CPU for the load generator (and the broker) and the CPU for the server under test."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        raise SystemExit("the HTTP benchmarks need two CPUs: one for the server, one for the load")
    return available[0], available[1]


def require_wrk() -> str:
    """The path of `wrk`, or a clear exit naming how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")
    return found


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run saw."""

    requests: int  # answered, whatever the status
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    ids: list[str]  # the event ids every 200 named (POST scripts only)

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx


def run_wrk(  # noqa: PLR0913 - keyword-only options
    url: str,
    script: str,
    *,
    cpu: int,
    connections: int,
    seconds: float,
    env: Mapping[str, str],
) -> WrkRun:
    """One wrk run (one thread, pinned to `cpu`) with a script of `bench/lua/`."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        report = Path(folder) / "report.json"
        command = [_TASKSET, "-c", str(cpu), require_wrk(), "-t1", f"-c{connections}"]
        command += [f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(LUA / script), url]
        completed = subprocess.run(  # noqa: S603 - a fixed command line
            command,
            env={**os.environ, **env, "BENCH_REPORT": str(report)},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not report.exists():
            raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
        figures = orjson.loads(report.read_bytes())
    return WrkRun(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        non_2xx=figures["non_2xx"],
        socket_errors=sum(figures[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        ids=figures.get("ids", []),
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process under test, pinned to one CPU."""

    name: str
    port: int
    process: "subprocess.Popen[bytes]"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def pinned(
    command: Sequence[str], *, cpu: int, env: Mapping[str, str], log: Path
) -> Iterator["subprocess.Popen[bytes]"]:
    """`command` pinned to `cpu`, in a process group of its own, output to `log`; stopped on exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the benchmark's own commands
            [_TASKSET, "-c", str(cpu), *command],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


@contextlib.contextmanager
def server(  # noqa: PLR0913 - keyword-only options
    name: str, command: Sequence[str], *, cpu: int, port: int, env: Mapping[str, str], log: Path
) -> Iterator[Server]:
    """Starts `command` pinned to `cpu`, waits until `port` takes connections; SIGTERM on exit."""
    with pinned(command, cpu=cpu, env=env, log=log) as process:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on {port}: {log.read_text()[-2000:]}")
            time.sleep(0.1)  # a poll of the port, bounded by the deadline above
        yield Server(name, port, process)


def stop(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the process group, SIGKILL if it does not end in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def python(module: str, *args: str) -> list[str]:
    """A command line running one of this project's modules with this interpreter."""
    return [sys.executable, "-m", module, *args]


def tajo(*args: str) -> list[str]:
    """A command line running `tajo-events` with this interpreter."""
    return python("tajo_events.cli", *args)

"""Running the project's own commands as child processes in tests, and waiting on conditions."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildProcess:
    """A `tajo-events` sub-command in its own process group, its output kept in a log file."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ChildProcess":
        """Starts the command; its output goes to the log file."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tajo_events.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")


def child_pids(pid: int) -> list[int]:
    """The pids of a live process's children, from Linux's /proc/<pid>/task/*/children."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(child) for child in children.read_text().split())
        except (OSError, ValueError):  # the thread or the process ended meanwhile
            continue
    return sorted(found)


def command_line(pid: int) -> list[str]:
    """A process's arguments; empty once it has exited (a zombie has none)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, within: float = 90.0
) -> T:
    """Polls `probe` until `accept` holds of its result; fails with the last result after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if accept(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {within}s; last result: {result!r}")
        await asyncio.sleep(0.25)


async def run_command(args: list[str], env: Mapping[str, str], *, within: float) -> tuple[int, str, str]:
    """Runs a `tajo-events` sub-command to its end without blocking the loop: exit code, stdout, stderr.

    The child sees this environment without its KAFKA_* and TAJO_* settings, plus `env`.
    """
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TAJO_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tajo_events.cli",
        *args,
        env={**inherited, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(within):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()

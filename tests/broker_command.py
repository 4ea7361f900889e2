"""`tajo-events kafka --data-dir` as a test runs it: a broker of the test's own, killed and started again."""

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

from tests.processes import ChildProcess, command_line, eventually, free_port

READY = re.compile(r"broker pid (\d+);.*\nKAFKA_BOOTSTRAP_SERVERS=(\S+)\n")


class Broker:
    """`tajo-events kafka --port P --data-dir D`, and the Java broker it starts: killed, started again."""

    def __init__(self, data_dir: Path, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        args = ["kafka", "--port", str(self.port), "--data-dir", str(data_dir)]
        self.child = ChildProcess(args, {}, log_path)
        self.log_path = log_path
        self.java_pids: list[int] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Starts the command and waits for it to say the broker answers; returns the bootstrap servers."""
        already = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.child.start()

        async def ready() -> tuple[re.Match[str] | None, int | None]:
            text = self.log_path.read_bytes()[already:].decode(errors="replace")
            assert self.child.process is not None
            return READY.search(text), self.child.process.poll()

        match, exited = await eventually(
            ready, lambda found: found[0] is not None or found[1] is not None, within=120
        )
        assert match is not None, f"the broker command exited ({exited}):\n{self.child.output()[-3000:]}"
        self.java_pids.append(int(match.group(1)))
        assert match.group(2) == self.bootstrap
        return self.bootstrap

    @property
    def java_pid(self) -> int:
        return self.java_pids[-1]

    async def kill(self) -> int:
        """SIGKILLs the Java broker, as a crash would; returns the command's exit code once it noticed."""
        os.kill(self.java_pid, signal.SIGKILL)
        assert self.child.process is not None
        return await asyncio.to_thread(self.child.process.wait, 60)

    def stop(self) -> None:
        self.child.stop()  # SIGTERM: the command stops its broker
        for pid in self.java_pids:  # and should the command have failed to, the brokers it started
            if "kafka.Kafka" in command_line(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

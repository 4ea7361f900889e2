"""The processes the chaos suite kills and starts again: each a `tajo-events` command in its own group."""

import asyncio
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from tests.processes import ChildProcess, child_pids, command_line, eventually, free_port


class Service:
    """A `tajo-events` command that can be killed with SIGKILL and started again, on the same port.

    `ready` is what it prints once it serves; each start waits for it in what that start printed.
    """

    def __init__(
        self, args: list[str], env: Mapping[str, str], log_path: Path, ready: str, *, port: bool = True
    ) -> None:
        self.port = free_port() if port else 0
        self.args = [*args, "--port", str(self.port)] if port else args
        self.env = dict(env)
        self.log_path = log_path
        self.ready = ready
        self.child: ChildProcess | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "Service":
        """Starts the command and returns once it says it is ready."""
        already = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.child = ChildProcess(self.args, self.env, self.log_path).start()
        self.starts += 1
        child = self.child

        async def printed() -> str:
            assert child.process is not None
            text = self.log_path.read_bytes()[already:].decode(errors="replace")
            assert child.process.poll() is None, f"{self.args[0]} exited ({child.process.poll()}):\n{text}"
            return text

        await eventually(printed, lambda text: self.ready in text, within=120)
        return self

    @property
    def pid(self) -> int:
        assert self.child is not None
        assert self.child.process is not None
        return self.child.process.pid

    async def kill(self) -> None:
        """SIGKILL to its whole process group, as a crash would; returns once it is gone."""
        assert self.child is not None
        await asyncio.to_thread(self.child.kill)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


class Worker(Service):
    """`tajo-events worker`: a supervisor and its fold child."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(["worker"], env, log_path, ready="", port=False)

    def fold_pid(self) -> int | None:
        """The pid of the supervisor's live `worker --role fold` child, if it has one."""
        for pid in child_pids(self.pid):
            args = command_line(pid)
            if "--role" in args and args[args.index("--role") + 1 : args.index("--role") + 2] == ["fold"]:
                return pid
        return None

    async def kill_fold(self) -> int:
        """SIGKILLs the fold child (the supervisor stays); returns once another fold runs in its place."""

        async def fold() -> int | None:
            return self.fold_pid()

        killed = await eventually(fold, lambda pid: pid is not None, within=60)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        await eventually(fold, lambda pid: pid is not None and pid != killed, within=60)
        return killed

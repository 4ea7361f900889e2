"""The worker supervisor: runs the live generation's fold (and the effector) as child processes.

It follows the generations control topic; when a replay makes another generation live, it stops
the old fold (which commits what it has done) and starts the new one, which recovers its table
from the changelog the replay built and folds on from the offsets the replay committed. A child
that dies is started again.
"""

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator
from typing import Protocol

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 30.0
COMMAND = [sys.executable, "-m", "tajo_events.cli"]  # how a child is started (tests run a stand-in)


class Following(Protocol):
    """What the supervisor needs of the generations control topic."""

    def follow(self) -> AsyncGenerator[int, None]:
        """The live generation, then each change."""
        ...


class Child:
    """One `tajo-events worker --role ...` process, in the supervisor's process group."""

    def __init__(self, *args: str) -> None:
        self.args = ["worker", *args]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Child":
        self.process = subprocess.Popen([*COMMAND, *self.args])  # noqa: S603
        log.info("started %s (pid %d)", " ".join(self.args), self.process.pid)
        return self

    @property
    def died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def supervise(control: Following, *, effects: bool) -> int:
    """Runs until SIGTERM or SIGINT."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    children: dict[str, Child] = {}
    if effects:
        children["effects"] = Child("--role", "effects").start()
    generations = control.follow()
    next_generation = asyncio.ensure_future(anext(generations))
    stop_wait = asyncio.ensure_future(stopping.wait())
    live: int | None = None
    try:
        while not stopping.is_set():
            await asyncio.wait(
                {next_generation, stop_wait}, timeout=RESTART_DELAY_S, return_when=asyncio.FIRST_COMPLETED
            )
            if next_generation.done():
                try:
                    generation = next_generation.result()
                except Exception as error:  # the broker may be away: follow again after a pause
                    log.warning("cannot follow the live generation, retrying: %r", error)
                    await generations.aclose()
                    await asyncio.sleep(RESTART_DELAY_S)
                    generations = control.follow()
                    next_generation = asyncio.ensure_future(anext(generations))
                    continue
                next_generation = asyncio.ensure_future(anext(generations))
                if generation != live:
                    log.info("generation %d is live", generation)
                    if "fold" in children:
                        await children["fold"].stop()
                    children["fold"] = Child("--role", "fold", "--generation", str(generation)).start()
                    live = generation
            for name, child in list(children.items()):
                if child.died and not stopping.is_set():
                    log.warning("%s exited; starting it again", name)
                    children[name] = Child(*child.args[1:]).start()
    finally:
        next_generation.cancel()
        stop_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await next_generation
        await generations.aclose()
        await asyncio.gather(*(child.stop() for child in children.values()))
    return 0

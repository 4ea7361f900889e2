"""A worker process that has begun to stop is gone within a deadline, whatever Faust does meanwhile.

After losing its broker, a fold's Faust app crashes and its worker stops; now and then the stop hangs
for good ("Wait for streams...": a stream waits on writes the dead broker will never acknowledge),
and the supervisor, waiting for the process to exit to start it again, waits with it: a fold stood
still for minutes in the chaos suite. A stop that overruns its deadline ends the process as a
`kill -9` would, which the fold is built to survive: offsets are committed only after the states
they cover are acknowledged, and every state carries the offset of its last event.
"""

import logging
import os
import sys
import threading
from typing import Any

from faust.worker import Worker

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0  # a clean stop takes well under a second here
FORCED_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor starts the fold again


def exit_after(grace_s: float, code: int = FORCED_EXIT_CODE) -> threading.Timer:
    """Ends the process with `code` in `grace_s` seconds unless it has exited by then."""

    def force() -> None:
        # no logging call: a handler's lock may be held by the thread that hangs
        sys.stderr.write(f"worker still stopping after {grace_s:g}s; exiting (code {code})\n")
        sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(grace_s, force)
    timer.daemon = True
    timer.start()
    return timer


class DeadlineWorker(Worker):
    """Faust's worker, with a deadline on its stop (a crash, a signal)."""

    stop_grace_s = STOP_GRACE_S

    async def stop(self, *args: Any, **kwargs: Any) -> None:
        if not getattr(self, "_stop_deadline", None):
            log.info("stopping; the process ends within %gs whatever happens", self.stop_grace_s)
            self._stop_deadline = exit_after(self.stop_grace_s)
        await super().stop(*args, **kwargs)

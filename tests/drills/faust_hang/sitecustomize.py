"""Makes Faust hang once at the end of a rebalance, for the test of the worker's transition watch.

Python imports this module at start-up in every process whose PYTHONPATH leads here. With
TAJO_TEST_HANG_ONCE naming a file that does not exist yet, the first fold process to finish a
table recovery creates it and then waits forever where Faust would resume its streams, as the hangs
of faust-streaming issues 21, 74 and 133 do; the processes after it find the file and go on.
"""

import asyncio
import functools
import os
from collections.abc import Callable, Coroutine
from typing import Any

_MARKER = os.environ.get("TAJO_TEST_HANG_ONCE")

Method = Callable[..., Coroutine[Any, Any, None]]


def _first_to_claim(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _hang_once(method: Method, marker: str) -> Method:
    @functools.wraps(method)
    async def hang_the_first_time(self: object, *args: Any, **kwargs: Any) -> None:
        if _first_to_claim(marker):
            await asyncio.Event().wait()
        await method(self, *args, **kwargs)

    return hang_the_first_time


if _MARKER:
    from faust.tables.recovery import Recovery

    Recovery._resume_streams = _hang_once(Recovery._resume_streams, _MARKER)  # type: ignore[method-assign]
    Recovery.on_recovery_completed = _hang_once(Recovery.on_recovery_completed, _MARKER)  # type: ignore[method-assign]

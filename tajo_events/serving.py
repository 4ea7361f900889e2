"""How every tajo-events HTTP service is served: one event loop policy, no per-request log by default.

`make bench` serves its bare aiohttp baseline through this same function, so that the ingester and
the baseline are compared served the same way.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping

from aiohttp import web

from tajo_events.gc_tuning import tune_for_folding
from tajo_events.read_deadline import ReadDeadlineRunner
from tajo_events.settings import read_timeout_from_env
from telemetry.logs import AccessLogger

log = logging.getLogger(__name__)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes"}


def event_loop_factory(env: Mapping[str, str]) -> Callable[[], asyncio.AbstractEventLoop]:
    """The loop to serve on: uvloop's, unless TAJO_EVENT_LOOP=asyncio or uvloop is not installed."""
    if env.get("TAJO_EVENT_LOOP", "uvloop").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # an optional speed-up: asyncio's loop does the same job
            log.info("uvloop is not installed; serving on asyncio's event loop")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_app(
    app: web.Application,
    host: str,
    port: int,
    announce: Callable[..., None],
    env: Mapping[str, str] = os.environ,
) -> None:
    """Serves `app` until SIGINT or SIGTERM; a line per request only with TAJO_ACCESS_LOG=true.

    A request line has the request's id, method, route template (never the path: paths hold addresses),
    status and duration. A client slower than TAJO_READ_TIMEOUT_S to send a request is cut off
    (`tajo_events.read_deadline`); aiohttp's own `run_app` has no hook for that, hence this loop.
    """
    access_log = logging.getLogger("aiohttp.access") if _flag(env, "TAJO_ACCESS_LOG") else None
    runner = ReadDeadlineRunner(
        app,
        read_timeout_s=read_timeout_from_env(env),
        handle_signals=True,  # SIGINT and SIGTERM raise GracefulExit: a clean stop
        access_log=access_log,
        access_log_class=AccessLogger,
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
    )
    loop = event_loop_factory(env)()
    asyncio.set_event_loop(loop)
    tune_for_folding()  # the app is set up: what exists now is never garbage
    serving = loop.create_task(_serve(runner, host, port, announce))
    try:
        loop.run_until_complete(serving)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(serving)  # the runner's clean-up: the app's cleanup_ctx
        _cancel_the_rest(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


KEEPALIVE_TIMEOUT_S = 75.0  # an idle connection between requests is closed after this (aiohttp's run_app)


async def _serve(runner: web.AppRunner, host: str, port: int, announce: Callable[..., None]) -> None:
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        announce(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        await asyncio.Event().wait()  # until a signal or a cancellation
    finally:
        await runner.cleanup()


def _cancel_the_rest(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

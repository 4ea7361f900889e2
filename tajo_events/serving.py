"""How every tajo-events HTTP service is served: one event loop policy, no per-request log by default.

`make bench` serves its bare aiohttp baseline through this same function, so that the ingester and
the baseline are compared served the same way.
"""

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

from aiohttp import web

from tajo_events.gc_tuning import tune_for_folding
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
    status and duration.
    """
    access_log = logging.getLogger("aiohttp.access") if _flag(env, "TAJO_ACCESS_LOG") else None
    loop = event_loop_factory(env)()
    asyncio.set_event_loop(loop)
    tune_for_folding()  # the app is set up: what exists now is never garbage
    web.run_app(
        app,
        host=host,
        port=port,
        print=announce,
        access_log=access_log,
        access_log_class=AccessLogger,
        loop=loop,
    )

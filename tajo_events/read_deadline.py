"""A deadline on reading each request: a client slower than `read_timeout_s` to send it is cut off.

aiohttp has no read timeout: a client dribbling its headers or its body a byte at a time holds its
connection (and the handler reading the body) for as long as it likes, and some hundreds of such
clients hold the server. Here a request must arrive whole, headers and body, within `read_timeout_s`
of its first byte (of the connection's opening, for its first request):

- still sending its headers then, or the unread rest of a body already answered: the connection is
  closed;
- still sending the body a handler is reading: the read raises 408 Request Timeout, which is the
  answer, and the connection is closed after it.

A connection idle between requests is left to the keep-alive timeout, as before. The clock is one
timer per connection, armed at a request's first byte and disarmed once its body is in; so a
pipelined request whose first bytes came in the same read as the end of the one before gets its
clock from its next bytes (or, if none come, the keep-alive timeout closes the connection).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server


class ReadDeadlineHandler(RequestHandler):
    """aiohttp's connection handler, with the read deadline of this module."""

    __slots__ = ("_read_timed_out", "_read_timeout_s", "_read_timer")

    def __init__(self, manager: Server, *, read_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._read_timeout_s = read_timeout_s
        self._read_timer: asyncio.TimerHandle | None = None
        self._read_timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()  # the first request's headers are due within the deadline too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and data:
            self._arm()  # the first bytes of a request
        super().data_received(data)

    async def _handle_request(
        self,
        request: BaseRequest,
        start_time: float | None,
        request_handler: Callable[[BaseRequest], Awaitable[web.StreamResponse]],
    ) -> tuple[web.StreamResponse, bool]:
        request.content.on_eof(self._disarm)  # at once when the body is in already (or there is none)
        return await super()._handle_request(request, start_time, request_handler)

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if self._read_timed_out:
            self.force_close()  # no lingering over the rest of a body that came too slowly
        return answered

    def _arm(self) -> None:
        self._read_timer = self._loop.call_later(self._read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self) -> None:
        self._read_timer = None
        request = self._current_request
        if request is not None:  # a handler runs: it gets a 408 if it reads the rest of the body
            if not request.content.is_eof():
                self._read_timed_out = True
                message = f"request not received whole within {self._read_timeout_s:g}s"
                answer = {"error": "Request Timeout", "message": message}
                timeout = web.HTTPRequestTimeout(text=json.dumps(answer), content_type="application/json")
                request.content.set_exception(timeout)
        elif not self._request_in_progress and not self._messages:
            # headers not in yet, or an answered body still coming; a request parsed whole and queued
            # (pipelined behind the one just answered) is not cut off
            self.force_close()


class ReadDeadlineServer(Server):
    """aiohttp's low-level server, its connections handled by `ReadDeadlineHandler`."""

    def __init__(self, server: Server, read_timeout_s: float) -> None:
        super().__init__(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,  # the loop aiohttp's own server was made for
            **server._kwargs,  # the handler settings of the runner and the app
        )
        self._read_timeout_s = read_timeout_s

    def __call__(self) -> RequestHandler:
        return ReadDeadlineHandler(self, loop=self._loop, read_timeout_s=self._read_timeout_s, **self._kwargs)


class ReadDeadlineRunner(web.AppRunner):
    """An `AppRunner` whose server puts the read deadline on every connection."""

    def __init__(self, app: web.Application, *, read_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._read_timeout_s = read_timeout_s

    async def _make_server(self) -> Server:
        return ReadDeadlineServer(await super()._make_server(), self._read_timeout_s)

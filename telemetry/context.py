"""The request being handled, for the log lines written while it is: its id and its route.

Setting it costs a context variable per request; the id is made only when a line is written.
"""

import re
import uuid
from contextvars import ContextVar

from aiohttp import web

CURRENT_REQUEST: ContextVar[web.BaseRequest | None] = ContextVar("tajo_current_request", default=None)
REQUEST_ID = web.RequestKey("tajo_request_id", str)
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id(request: web.BaseRequest) -> str:
    """The caller's `X-Request-Id` when it is a short plain id, else one made up for this request."""
    known = request.get(REQUEST_ID)
    if isinstance(known, str):
        return known
    presented = request.headers.get(REQUEST_ID_HEADER, "")
    made = presented if _SAFE_ID.fullmatch(presented) else uuid.uuid4().hex[:16]
    if isinstance(request, web.Request):
        request[REQUEST_ID] = made
    return made


def route_of(request: web.BaseRequest) -> str:
    """The route template a request matched (`/api/customers/{address}`), never its path (it holds emails)."""
    if not isinstance(request, web.Request):
        return "unmatched"
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def request_fields() -> dict[str, str]:
    """The id and route of the request being handled, if any."""
    request = CURRENT_REQUEST.get()
    if request is None:
        return {}
    return {"request_id": request_id(request), "route": route_of(request)}

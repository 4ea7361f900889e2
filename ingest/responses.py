"""JSON answers: a body encoded with orjson, and the error shape every route shares."""

from collections.abc import Mapping

import orjson
from aiohttp import web


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON error body: `{"error": <reason phrase>, "message": <what to fix>}`."""
    return json_response({"error": web.Response(status=status).reason, "message": message}, status, headers)

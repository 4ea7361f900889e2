"""Serves the page's static files: `GET /` (the page), `GET /static/app.js`, `GET /static/style.css`.

The files hold no data and are public; everything the page shows comes from the projections API,
which the page calls with the bearer token the user enters (kept in the tab's session storage).
"""

from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).parent / "static"
API_BASE_MARK = b"{{API_BASE}}"
# What the page's files are allowed to load and call: only this origin, nothing inline but SVG.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {
    "/static/app.js": ("app.js", "text/javascript"),
    "/static/style.css": ("style.css", "text/css"),
}
PAGE_PATHS = ("/", *FILES)


def _static(body: bytes, content_type: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)


def add_page(app: web.Application, api_base: str) -> None:
    """Adds the page's routes to `app`; the page calls the projections API at `api_base` (`/api`, or ``)."""
    index = (STATIC / "index.html").read_bytes().replace(API_BASE_MARK, api_base.rstrip("/").encode())
    bodies = {path: ((STATIC / name).read_bytes(), kind) for path, (name, kind) in FILES.items()}

    async def page(_: web.Request) -> web.Response:
        return _static(index, "text/html")

    app.router.add_get("/", page)
    for path, (body, kind) in bodies.items():

        async def serve(_: web.Request, body: bytes = body, kind: str = kind) -> web.Response:
            return _static(body, kind)

        app.router.add_get(path, serve)


def page_openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the page's routes: public static files."""
    kinds = {"/": "text/html", **{path: kind for path, (_, kind) in FILES.items()}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tajo-events page", "version": "1.0.0"},
        "paths": {
            path: {
                "get": {
                    "summary": f"Get {path}",
                    "operationId": "get_page"
                    if path == "/"
                    else "get_" + path.rsplit("/", 1)[-1].replace(".", "_"),
                    "security": [],
                    "responses": {
                        "200": {"description": "OK", "content": {kind: {"schema": {"type": "string"}}}}
                    },
                }
            }
            for path, kind in kinds.items()
        },
    }

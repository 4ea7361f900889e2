"""A bare aiohttp server, served as every tajo-events service is (`tajo_events.serving.run_app`).

    python -m bench.bare --port N

`POST /webhooks/brevo` answers 200 with an empty body without reading the request; `GET
/api/customers/{address}` answers 200 with a small fixed JSON body. This is the baseline the
benchmarks hold the ingester and the projections API to.
"""

import argparse
import sys

from aiohttp import web

from tajo_events.serving import run_app

_CUSTOMER = b'{"address":"customer1@example.com","marketing_enabled":true}'


async def _post(_request: web.Request) -> web.Response:
    return web.Response()


async def _get(_request: web.Request) -> web.Response:
    return web.Response(body=_CUSTOMER, content_type="application/json")


def main(argv: list[str] | None = None) -> int:
    """Serves the bare app on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args(argv)
    app = web.Application()
    app.router.add_post("/webhooks/brevo", _post)
    app.router.add_get("/api/customers/{address}", _get)
    run_app(app, "127.0.0.1", options.port, lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

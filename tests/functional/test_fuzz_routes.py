"""Every HTTP route, fuzzed from its OpenAPI document (schemathesis) against a real `tajo-events serve`.

Valid and invalid requests alike (schemathesis generates both), with and without credentials: never
a 5xx, never a status the document does not list, never a hang (each call has a timeout). The
example count per route is bounded (`FUZZ_EXAMPLES`) so the suite stays quick.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from ingest.openapi import ingest_openapi_document
from projections.api import ROUTES
from projections.openapi import openapi_document
from tests.processes import free_port
from webpage.routes import page_openapi_document

WEBHOOK_TOKEN = "fuzz-webhook-token"  # a throw-away token of a throw-away server
API_TOKEN = "fuzz-api-token"
FUZZ_EXAMPLES = 40
CALL_TIMEOUT_S = 10.0
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
INGEST = schemathesis.openapi.from_dict(ingest_openapi_document())
PROJECTIONS = schemathesis.openapi.from_dict(
    openapi_document("tajo-events projections", [route for route, _ in ROUTES])
)
PAGE = schemathesis.openapi.from_dict(page_openapi_document())
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
    env |= {"BREVO_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "TAJO_API_TOKEN": API_TOKEN, "TAJO_DATA_DIR": str(folder)}
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tajo_events.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"listening on" not in log_path.read_bytes():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)  # a poll of the server's output, bounded by the deadline
        yield f"http://127.0.0.1:{port}"
        assert process.poll() is None, f"serve died under the fuzz:\n{log_path.read_text()[-4000:]}"
        assert b"Traceback" not in log_path.read_bytes(), log_path.read_text()[-4000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


@pytest.mark.parametrize("authenticated", [True, False], ids=["with credentials", "without"])
@INGEST.parametrize()
@FUZZ
def test_ingester_routes_answer_only_documented_statuses(
    case: schemathesis.Case[Any], base_url: str, authenticated: bool
) -> None:
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"} if authenticated else {}
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=CALL_TIMEOUT_S)


@pytest.mark.parametrize("authenticated", [True, False], ids=["with credentials", "without"])
@PROJECTIONS.parametrize()
@FUZZ
def test_projection_routes_answer_only_documented_statuses(
    case: schemathesis.Case[Any], base_url: str, authenticated: bool
) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"} if authenticated else {}
    case.call_and_validate(base_url=f"{base_url}/api", headers=headers, checks=CHECKS, timeout=CALL_TIMEOUT_S)


@PAGE.parametrize()
@FUZZ
def test_the_page_routes_answer_only_documented_statuses(case: schemathesis.Case[Any], base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=CALL_TIMEOUT_S)


def _documents_cover_every_route(paths: set[str]) -> None:
    documented = (
        set(ingest_openapi_document()["paths"])
        | {"/api" + path for path in openapi_document("p", [route for route, _ in ROUTES])["paths"]}
        | set(page_openapi_document()["paths"])
    )
    assert paths <= documented, paths - documented


def test_the_documents_cover_every_route_serve_answers(tmp_path: Path) -> None:
    from tajo_events.embedded import create_embedded_app

    os.environ.setdefault("BREVO_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    app = create_embedded_app(tmp_path, API_TOKEN)  # built, never started
    paths = set()
    for resource in app.router.resources():
        sub = resource.get_info().get("app")
        inner = sub.router.resources() if isinstance(sub, web.Application) else [resource]
        paths |= {served.canonical for served in inner}  # a sub-app's resources carry its prefix
    _documents_cover_every_route(paths)

"""Shared fixtures: a real Kafka broker for the suites that need one."""

import logging
import os
import socket
from collections.abc import Iterator

import pytest
from _pytest.logging import LogCaptureHandler

from tajo_events.kafka_local import KafkaLocalError, LocalKafka, broker_available_via_docker

NO_BROKER = (
    "no Kafka broker for the Kafka-backed tests; provide one of: "
    "(1) KAFKA_BOOTSTRAP_SERVERS pointing at a running broker, "
    "(2) a Docker engine for testcontainers, "
    "(3) Java 17+ and Maven to run the local broker from Maven Central jars (`make kafka`). "
)


def _pytest_handler(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undoes what a test's `configure_logging` (the CLI's `main` run in-process) did to the root logger.

    It replaces the root handlers with one writing to the test's captured stderr; left there, it would
    write to a closed file in every later test. pytest's own session handlers come back, its per-phase
    capture handlers are pytest's to add and remove.
    """
    root = logging.getLogger()
    level = root.level
    session = [h for h in root.handlers if _pytest_handler(h) and not isinstance(h, LogCaptureHandler)]
    yield
    kept = [h for h in root.handlers if _pytest_handler(h)]
    root.handlers[:] = kept + [h for h in session if h not in kept]
    root.setLevel(level)


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker: KAFKA_BOOTSTRAP_SERVERS, else testcontainers, else local jars."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        if not _answers(configured):
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer")
        yield configured
        return
    if broker_available_via_docker():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    broker = LocalKafka(num_partitions=4)
    try:
        broker.start()
    except KafkaLocalError as error:
        pytest.fail(NO_BROKER + f"the local broker failed: {error}")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


SCREENSHOTS = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Says where the page's browser tests saved their screenshots, when they ran."""
    folder = config.stash.get(SCREENSHOTS, None)
    if folder is not None:
        terminalreporter.write_line(f"screenshots of the page: {folder}")

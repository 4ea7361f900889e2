"""Shared fixtures: a real Kafka broker for the suites that need one."""

import os
import socket
from collections.abc import Iterator

import pytest

from tajo_events.kafka_local import KafkaLocalError, LocalKafka, broker_available_via_docker

NO_BROKER = (
    "no Kafka broker for the Kafka-backed tests; provide one of: "
    "(1) KAFKA_BOOTSTRAP_SERVERS pointing at a running broker, "
    "(2) a Docker engine for testcontainers, "
    "(3) Java 17+ and Maven to run the local broker from Maven Central jars (`make kafka`). "
)


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

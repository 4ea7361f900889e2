"""Fixtures of the end-to-end suites: a pipeline of its own per test, on the session's broker."""

import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics
from ingest.app import create_app as create_ingest_app
from ingest.config import IngestSettings
from projections.api import ApiSettings
from projections.api import create_app as create_projections_app
from projections.generational import GenerationalFeeder
from projections.holder import ProjectionHolder
from tests.integration.pipeline import API_TOKEN, PARTITIONS, SECRET, ClientFactory, Pipeline


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed pipeline test shows what its workers' logs say of groups, recovery and warnings."""
    report: pytest.TestReport = yield
    running = getattr(item, "funcargs", {}).get("pipeline")
    if report.failed and isinstance(running, Pipeline) and running.workers:
        report.sections.append(("workers' logs", running.worker_story()))
    return report


@pytest.fixture
async def pipeline(
    aiohttp_client: ClientFactory, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    app_id = f"test-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}.events"
    await ensure_topics(kafka_bootstrap, {topic: PARTITIONS, f"{app_id}.actions": PARTITIONS})
    ingest = create_ingest_app(
        IngestSettings(webhook_secret=SECRET), KafkaEventLog(KafkaLogSettings(kafka_bootstrap, topic))
    )
    holder = ProjectionHolder()
    feeder = GenerationalFeeder(kafka_bootstrap, app_id, topic, holder)
    api = create_projections_app(ApiSettings(API_TOKEN), holder, feeder)
    running = Pipeline(
        kafka_bootstrap, tmp_path, await aiohttp_client(ingest), await aiohttp_client(api), app_id, topic
    )
    try:
        yield running
    finally:
        for worker in running.workers:
            worker.stop()

"""On a real broker: the overview and timelines, read from the events topic by the projections service."""

from collections import Counter
from typing import Any

import pytest

from tajo_events.cli import projections_app
from tajo_events.settings import PipelineSettings
from tests.integration.pipeline import API_TOKEN, PARTITIONS, ClientFactory, Pipeline
from tests.payloads import brevo_sms, seed_email
from tests.processes import eventually

pytestmark = pytest.mark.kafka


async def test_the_overview_and_timelines_follow_the_events_topic(
    pipeline: Pipeline, aiohttp_client: ClientFactory
) -> None:
    settings = PipelineSettings.from_env({**pipeline.command_env, "TAJO_API_TOKEN": API_TOKEN})
    projections = await aiohttp_client(projections_app(settings))  # as `tajo-events projections` runs it

    async def get(path: str) -> tuple[int, Any]:
        response = await projections.get(path, headers={"Authorization": f"Bearer {API_TOKEN}"})
        return response.status, await response.json()

    page = await projections.get("/")
    assert page.status == 200
    assert '<meta name="tajo-api-base" content="">' in await page.text()
    pipeline.start_worker()
    addresses = [f"reader{n}@example.com" for n in range(6)]  # over several partitions
    for n, address in enumerate(addresses):
        await pipeline.post(seed_email("delivered", address, camp_id=45, ts=1640995200 + n))
        await pipeline.post(seed_email("opened", address, camp_id=45, ts=1640995300 + n))
    await pipeline.post(
        {
            "event": "contact_updated",
            "email": addresses[0],
            "attributes": {"SMS": "+33612345678"},
            "ts": 1640995400,
        }
    )
    await pipeline.post(brevo_sms("delivered", to="33612345678", ts=1640995500))
    await pipeline.post({"event": "mystery", "email": addresses[1], "ts": 1640995600})
    posted = Counter({"email.delivered": 6, "email.opened": 6, "contact.updated": 1, "contact.linked": 1})
    posted |= Counter({"sms.delivered": 1, "unknown": 1})

    def settled(answer: tuple[int, Any]) -> bool:
        status, body = answer
        lags = [p["lag"] for p in body["fold"]] if status == 200 else []
        return body.get("totals") == dict(posted) and len(lags) == PARTITIONS and lags == [0] * PARTITIONS

    _, overview = await eventually(lambda: get("/overview"), settled)
    assert overview["last_hour_totals"] == dict(posted)
    assert overview["unknown_names"] == [{"name": "mystery", "count": 1}]
    assert overview["brevo"]["silent"] is False
    assert overview["actions"]["dead_lettered"] == 0
    assert overview["actions"]["done"] == 0  # no BREVO_API_KEY: no effector, nothing handled
    health = {s["name"]: s["status"] for s in overview["services"]}
    assert health["broker"] == "ok"
    assert health["fold"] == "ok"

    _, timeline = await eventually(
        lambda: get(f"/customers/{addresses[0]}/timeline"),
        lambda answer: answer[0] == 200 and len(answer[1]["events"]) == 5,
    )
    assert [e["type"] for e in timeline["events"]][:1] == ["sms.delivered"]  # the linked phone's, newest
    assert {e["type"] for e in timeline["events"]} == {
        "sms.delivered",
        "contact.updated",
        "contact.linked",
        "email.opened",
        "email.delivered",
    }

"""The projections service's `/metrics` on Kafka: the fold's lag, its dead letters, the effector's actions."""

import re

import pytest

from streams.fold_faults import FAULT_VARIABLE
from tajo_events.cli import projections_app
from tajo_events.settings import PipelineSettings
from tests.fakes.brevo_server import FakeBrevo
from tests.integration.pipeline import API_TOKEN, PARTITIONS, ClientFactory, Pipeline
from tests.payloads import brevo_email, brevo_sms
from tests.processes import eventually

pytestmark = pytest.mark.kafka

SAMPLE = re.compile(r'^(tajo_[a-z_]+)(?:\{partition="(\d+)"\})? ([0-9.e+-]+)$', re.MULTILINE)


def samples(text: str) -> dict[str, dict[str | None, float]]:
    """Each metric's samples by partition label (None: a sample without labels)."""
    found: dict[str, dict[str | None, float]] = {}
    for name, partition, value in SAMPLE.findall(text):
        found.setdefault(name, {})[partition or None] = float(value)
    return found


async def test_metrics_show_the_fold_lag_and_the_actions_carried_out_and_dead_lettered(
    pipeline: Pipeline, aiohttp_client: ClientFactory
) -> None:
    settings = PipelineSettings.from_env({**pipeline.command_env, "TAJO_API_TOKEN": API_TOKEN})
    projections = await aiohttp_client(projections_app(settings))

    async def scrape() -> dict[str, dict[str | None, float]]:
        response = await projections.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert response.status == 200
        return samples(await response.text())

    customers = [f"lag{n}@example.com" for n in range(12)]
    ids = await pipeline.post([brevo_email("delivered", email=c) for c in customers])
    # no worker yet: every record is still to fold (a broker just started may take a moment to have a
    # group coordinator: until then the scrape says how old its figures are and shows none)
    before = await eventually(scrape, lambda figures: "tajo_fold_lag_records" in figures, within=60)
    assert sum(before["tajo_fold_lag_records"].values()) == len(customers)
    assert before["tajo_events_dead_lettered_total"][None] == 0
    assert before["tajo_pipeline_positions_age_seconds"][None] >= 0

    async with FakeBrevo(api_key="brevo-key-for-tests") as brevo:
        pipeline.worker_env = {
            "BREVO_API_KEY": "brevo-key-for-tests",
            "BREVO_API_BASE_URL": brevo.base_url,
            FAULT_VARIABLE: ids[3],  # the fold of one event raises: it is set aside
        }
        brevo.fail_next("/transactionalSMS", 1, status=400)  # a refusal: the help SMS is dead-lettered
        pipeline.start_worker()
        await pipeline.post({"event": "sms_reply", "phone": "+33612340001", "text": "help", "ts": 1700000000})
        await pipeline.post(brevo_sms("reply", to="33612340002", text="STOP"))  # a blacklisting, carried out

        def settled(figures: dict[str, dict[str | None, float]]) -> bool:
            lag = figures.get("tajo_fold_lag_records", {})
            return (
                len(lag) == PARTITIONS
                and not any(lag.values())
                and figures.get("tajo_actions_emitted_total", {}).get(None) == 2
                and figures.get("tajo_actions_handled_total", {}).get(None) == 2
                and figures.get("tajo_events_dead_lettered_total", {}).get(None) == 1
            )

        after = await eventually(scrape, settled, within=120)
    assert after["tajo_actions_dead_lettered_total"][None] == 1
    assert brevo.blacklisted == ["+33612340002"]

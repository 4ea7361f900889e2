"""End to end on a real broker: signed webhooks in, a Faust worker folds them, the API shows them."""

from typing import Any, TypeVar

import pytest

from tests.fakes.brevo_server import FakeBrevo
from tests.integration.pipeline import Pipeline
from tests.payloads import brevo_email, brevo_sms, seed_email
from tests.processes import eventually

T = TypeVar("T")

pytestmark = pytest.mark.kafka


def counts(view: Any) -> tuple[int, int, int, int]:
    email = view["channels"]["email"]["counts"]
    return email["delivered"], email["opened"], email["unique_opened"], email["clicked"]


async def test_webhooks_of_both_dialects_are_folded_and_served(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    alice = "Alice@Example.com"
    await pipeline.post(seed_email("delivered", email=alice))
    await pipeline.post(seed_email("opened", email=alice, ts=1640995300))
    clicked = seed_email("clicked", email=alice, ts=1640995400, link="https://tajo.example/rewards")
    first = await pipeline.post(clicked)
    assert await pipeline.post(clicked) == first  # Brevo sending the same event twice
    await pipeline.post(
        [
            brevo_email("delivered", email="bob@example.com"),
            brevo_email("unique_opened", email="bob@example.com", ts_epoch=1685543828000),
            brevo_email("click", email="bob@example.com", ts_epoch=1685543829000, link="https://x.example"),
        ]
    )

    _, view = await eventually(
        lambda: pipeline.customer("alice@example.com"), lambda r: r[0] == 200 and counts(r[1]) == (1, 1, 0, 1)
    )
    assert view["channels"]["email"]["last_seen"]["clicked_at"] == "2022-01-01T00:03:20Z"
    assert view["channels"]["email"]["open_rate"] == 1.0
    assert view["engagement_score"] > 0
    await eventually(
        lambda: pipeline.customer("bob@example.com"), lambda r: r[0] == 200 and counts(r[1]) == (1, 0, 1, 1)
    )
    await eventually(pipeline.lag, lambda lag: lag == 0)
    assert counts((await pipeline.customer("alice@example.com"))[1]) == (1, 1, 0, 1)

    assert (await pipeline.customer("nobody@example.com"))[0] == 404
    unauthorized = await pipeline.api.get("/customers/alice@example.com")
    assert unauthorized.status == 401


async def test_a_killed_worker_is_replaced_without_losing_or_double_counting(pipeline: Pipeline) -> None:
    first_worker = pipeline.start_worker()
    carol = "carol@example.com"
    burst = [brevo_email("delivered", email=carol, ts_epoch=1685543800000 + n) for n in range(40)]
    burst += [brevo_email("opened", email=carol, ts_epoch=1685543900000 + n) for n in range(40)]
    await pipeline.post(burst[:20])
    await eventually(lambda: pipeline.customer(carol), lambda r: r[0] == 200)
    for start in range(20, len(burst), 10):
        await pipeline.post(burst[start : start + 10])
    first_worker.kill()
    await pipeline.post(burst[:30])  # duplicates, as Brevo retries would send them
    await pipeline.post([brevo_email("click", email=carol, ts_epoch=1685544000000)])

    pipeline.start_worker()
    await eventually(
        lambda: pipeline.customer(carol), lambda r: r[0] == 200 and counts(r[1]) == (40, 40, 0, 1), within=120
    )
    await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
    _, view = await pipeline.customer(carol)
    assert counts(view) == (40, 40, 0, 1)


async def test_one_help_sms_per_help_reply_despite_redelivery_and_a_brevo_failure(pipeline: Pipeline) -> None:
    async with FakeBrevo(api_key="brevo-key-for-tests") as brevo:
        pipeline.worker_env = {"BREVO_API_KEY": "brevo-key-for-tests", "BREVO_API_BASE_URL": brevo.base_url}
        brevo.fail_next("/transactionalSMS", 1, status=500)
        pipeline.start_worker()
        help_reply = {"event": "sms_reply", "phone": "+33612340001", "text": " help ", "ts": 1700000000}
        await pipeline.post(help_reply)
        await pipeline.post(help_reply)  # Brevo delivering the same reply twice
        await pipeline.post(brevo_sms("reply", to="33612340002", text="STOP"))
        await eventually(lambda: _settled(brevo.sms_sent), lambda sent: len(sent) >= 1, within=120)
        await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
        await eventually(lambda: _settled(brevo.blacklisted), lambda ids: len(ids) >= 1, within=60)
        assert [body["recipient"] for body in brevo.sms_sent] == ["33612340001"]
        assert len(brevo.requests_to("/transactionalSMS")) == 2  # the failed attempt, then the retry
        assert brevo.blacklisted == ["+33612340002"]


async def _settled(items: list[T]) -> list[T]:
    return list(items)

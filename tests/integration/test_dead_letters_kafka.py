"""Dead letters on Kafka, end to end with real Faust workers: an event whose fold raises goes to
`<events topic>.dead` with its error and the fold goes on; an action Brevo refuses goes to
`<actions topic>.dead`; `tajo-events dlq` lists and shows them, and after the fix re-submits each once.

The fold's failure is the fault drill `TAJO_FOLD_FAIL_EVENT_IDS` (`streams.fold_faults`): the fold of
the named event changes the state, then raises, as a bug would; "the fix" is a worker without it.
"""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.brevo import canonicalize_all
from streams.fold_faults import FAULT_VARIABLE
from tests.fakes.brevo_server import FakeBrevo
from tests.integration.pipeline import Pipeline
from tests.payloads import brevo_email
from tests.processes import eventually, run_command

pytestmark = pytest.mark.kafka

ADDRESS = "dlq-kafka@example.com"
T0 = 1_767_225_600_000
BREVO_KEY = "brevo-key-for-tests"


def delivered(n: int) -> dict[str, Any]:
    return brevo_email("delivered", email=ADDRESS, ts_epoch=T0 + n * 1000, **{"message-id": f"dlqk-{n}"})


def counts(answer: tuple[int, Any]) -> tuple[int, int] | None:
    status, view = answer
    if status != 200:
        return None
    return view["channels"]["email"]["counts"]["delivered"], view["dead_lettered"]


async def dlq(pipeline: Pipeline, *args: str) -> tuple[int, str]:
    code, out, err = await run_command(["dlq", *args], pipeline.command_env, within=90)
    assert code in (0, 1), err
    return code, out


def listed(out: str, kind: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines() if line.startswith(f"{kind}:")]


async def test_a_failing_event_is_dead_lettered_the_fold_goes_on_and_a_retry_folds_it_once(
    pipeline: Pipeline,
) -> None:
    failing = delivered(1)
    failing_id = canonicalize_all(failing, datetime.now(UTC))[0].event_id
    pipeline.worker_env = {FAULT_VARIABLE: failing_id}
    worker = pipeline.start_worker()
    for n in range(4):
        await pipeline.post(failing if n == 1 else delivered(n))
    await eventually(lambda: pipeline.customer(ADDRESS), lambda r: counts(r) == (3, 1), within=120)
    await eventually(pipeline.lag, lambda lag: lag == 0, within=120)  # committed past the failing event

    code, out = await dlq(pipeline, "list")
    [[entry_id, kind, _, status, summary]] = listed(out, "event")
    assert (code, kind, status) == (0, "event", "dead")
    assert summary == f"InjectedFoldFault: {FAULT_VARIABLE} names event {failing_id}"
    entry = orjson.loads((await dlq(pipeline, "show", entry_id))[1])
    assert entry["source"]["topic"] == pipeline.topic
    assert entry["source"]["offset"] is not None
    assert entry["record"]["event_id"] == failing_id

    worker.stop()  # the fix: a worker without the fault
    pipeline.worker_env = {}
    pipeline.start_worker()
    assert await dlq(pipeline, "retry", entry_id) == (0, f"{entry_id}: re-submitted to the log\n")
    await eventually(lambda: pipeline.customer(ADDRESS), lambda r: counts(r) == (4, 0), within=120)
    code, out = await dlq(pipeline, "retry", entry_id)
    assert "retried already" in out
    await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
    assert counts(await pipeline.customer(ADDRESS)) == (4, 0)
    [[_, _, _, status, _]] = listed((await dlq(pipeline, "list"))[1], "event")
    assert status == "retried"
    code, out, _ = await run_command(["replay", "--verify"], pipeline.command_env, within=120)
    assert code == 0, out


async def test_an_action_brevo_refused_is_dead_lettered_and_a_retry_after_the_fix_carries_it_out(
    pipeline: Pipeline,
) -> None:
    async with FakeBrevo(api_key=BREVO_KEY) as brevo:
        pipeline.worker_env = {"BREVO_API_KEY": BREVO_KEY, "BREVO_API_BASE_URL": brevo.base_url}
        brevo.fail_next("/transactionalSMS", 1, status=400)  # refused: no retry, a dead letter
        pipeline.start_worker()
        await pipeline.post({"event": "sms_reply", "phone": "+33612340009", "text": "help", "ts": 1700000000})
        out = (await eventually(lambda: dlq(pipeline, "list"), lambda r: bool(listed(r[1], "action"))))[1]
        [[entry_id, kind, _, status, summary]] = listed(out, "action")
        assert (kind, status) == ("action", "dead")
        assert summary.startswith("BrevoPermanentError")
        entry = orjson.loads((await dlq(pipeline, "show", entry_id))[1])
        assert entry["source"]["topic"] == pipeline.actions_topic
        assert entry["record"]["kind"] == "sms_help"
        assert brevo.sms_sent == []

        assert await dlq(pipeline, "retry", entry_id) == (0, f"{entry_id}: re-submitted to the actions\n")
        assert "retried already" in (await dlq(pipeline, "retry", entry_id))[1]
        await eventually(lambda: _settled(brevo.sms_sent), lambda sent: len(sent) == 1, within=120)
        await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
        assert [body["recipient"] for body in brevo.sms_sent] == ["33612340009"]


async def _settled(items: list[Any]) -> list[Any]:
    return list(items)

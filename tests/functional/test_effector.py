"""The effector and its HTTP adapter against a fake Brevo over HTTP: at most once, retried, no secrets."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from domain.actions import Action, ActionKind, make_action
from streams.brevo_api import BrevoPermanentError, BrevoSettings, BrevoTemporaryError, HttpBrevoApi
from streams.effector import Effector, MemoryDoneLog, Outcome, RetryPolicy
from tests.fakes.brevo_server import FakeBrevo

API_KEY = "xkeysib-0123456789abcdef-TESTSECRET"
PHONE = "+33612345678"
SMS = "/transactionalSMS/send"
CONTACTS = "/contacts/"


class Sleeps:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBrevo]:
    async with FakeBrevo(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def settings(fake: FakeBrevo) -> BrevoSettings:
    return BrevoSettings(
        api_key=API_KEY, base_url=fake.base_url, sms_sender="Tajo", help_text="Reply STOP to stop"
    )


@pytest.fixture
async def api(settings: BrevoSettings) -> AsyncIterator[HttpBrevoApi]:
    async with HttpBrevoApi(settings.base_url, settings.api_key, timeout_s=5) as client:
        yield client


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def done() -> MemoryDoneLog:
    return MemoryDoneLog()


@pytest.fixture
def effector(api: HttpBrevoApi, settings: BrevoSettings, done: MemoryDoneLog, sleeps: Sleeps) -> Effector:
    return Effector(api, settings, done, retry=RetryPolicy(max_attempts=4, base_delay_s=0.25), sleep=sleeps)


def action(kind: ActionKind, event: int = 1, address: str = PHONE) -> Action:
    return make_action(kind, address, f"{event:032x}", 1_767_225_600_000)


async def test_help_sends_one_sms_even_when_handled_twice_with_a_failure_in_between(
    fake: FakeBrevo, effector: Effector, done: MemoryDoneLog, sleeps: Sleeps
) -> None:
    help_action = action(ActionKind.SMS_HELP)
    fake.fail_next(SMS, times=1, status=500)
    assert await effector.handle(help_action) is Outcome.DONE
    fake.fail_next(SMS, times=1, status=500)
    assert await effector.handle(help_action) is Outcome.SKIPPED_DUPLICATE

    assert fake.sms_sent == [
        {
            "sender": "Tajo",
            "recipient": "33612345678",
            "content": "Reply STOP to stop",
            "type": "transactional",
            "tag": "tajo-help",
        }
    ]
    assert [(r.method, r.path) for r in fake.requests] == [("POST", SMS), ("POST", SMS)]
    request = fake.requests[-1]
    assert request.headers["api-key"] == API_KEY
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"].startswith("application/json")
    assert help_action.action_id in done
    assert sleeps.delays == [0.25]


async def test_concurrent_deliveries_of_one_action_send_one_sms(fake: FakeBrevo, effector: Effector) -> None:
    help_action = action(ActionKind.SMS_HELP)
    fake.fail_next(SMS, times=2, status=503)
    outcomes = await asyncio.gather(*(effector.handle(help_action) for _ in range(3)))
    assert sorted(outcomes) == sorted([Outcome.DONE, Outcome.SKIPPED_DUPLICATE, Outcome.SKIPPED_DUPLICATE])
    assert len(fake.sms_sent) == 1


async def test_distinct_help_actions_each_send_their_sms(fake: FakeBrevo, effector: Effector) -> None:
    assert await effector.handle(action(ActionKind.SMS_HELP, event=1)) is Outcome.DONE
    assert await effector.handle(action(ActionKind.SMS_HELP, event=2, address="+14155550123")) is Outcome.DONE
    assert [body["recipient"] for body in fake.sms_sent] == ["33612345678", "14155550123"]


async def test_unsubscribe_blacklists_the_number_once(fake: FakeBrevo, effector: Effector) -> None:
    unsubscribe = action(ActionKind.SMS_UNSUBSCRIBE)
    assert await effector.handle(unsubscribe) is Outcome.DONE
    assert await effector.handle(unsubscribe) is Outcome.SKIPPED_DUPLICATE

    assert fake.blacklisted == [PHONE]
    (request,) = fake.requests
    assert request.method == "PUT"
    assert request.raw_path == "/v3/contacts/%2B33612345678?identifierType=phone_id"
    assert request.query == {"identifierType": "phone_id"}
    assert request.json == {"smsBlacklisted": True}
    assert request.headers["api-key"] == API_KEY


async def test_kinds_without_a_brevo_call_touch_nothing(fake: FakeBrevo, effector: Effector) -> None:
    for kind in set(ActionKind) - {ActionKind.SMS_HELP, ActionKind.SMS_UNSUBSCRIBE}:
        assert await effector.handle(action(kind, address="jane@example.com")) is Outcome.NOT_NEEDED
    assert fake.requests == []


async def test_an_sms_action_without_a_phone_gives_up_without_calling(
    fake: FakeBrevo, effector: Effector
) -> None:
    help_action = action(ActionKind.SMS_HELP, address="jane@example.com")
    assert await effector.handle(help_action) is Outcome.GAVE_UP
    assert fake.requests == []
    assert effector.gave_up[help_action.action_id].startswith("InvalidAction: ")  # why, for its dead letter


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_4xx_is_permanent_one_call_no_retry_not_done(
    fake: FakeBrevo, effector: Effector, done: MemoryDoneLog, sleeps: Sleeps, status: int
) -> None:
    unsubscribe = action(ActionKind.SMS_UNSUBSCRIBE)
    fake.fail_next(CONTACTS, times=1, status=status)
    assert await effector.handle(unsubscribe) is Outcome.GAVE_UP
    assert len(fake.requests) == 1
    assert effector.gave_up[unsubscribe.action_id].startswith("BrevoPermanentError: ")
    assert str(status) in effector.gave_up[unsubscribe.action_id]
    assert sleeps.delays == []
    assert fake.blacklisted == []
    assert unsubscribe.action_id not in done


async def test_a_request_brevo_rejects_is_permanent(fake: FakeBrevo, api: HttpBrevoApi) -> None:
    with pytest.raises(BrevoPermanentError, match="400") as error:
        await api.send_sms("33612345678", "hi", sender="a sender name far too long", tag="t")
    assert error.value.status == 400
    assert fake.sms_sent == []


async def test_429_is_retried(fake: FakeBrevo, effector: Effector, sleeps: Sleeps) -> None:
    fake.fail_next(SMS, times=2, status=429)
    assert await effector.handle(action(ActionKind.SMS_HELP)) is Outcome.DONE
    assert len(fake.requests) == 3
    assert sleeps.delays == [0.25, 0.5]
    assert len(fake.sms_sent) == 1


async def test_a_wrong_api_key_is_permanent(
    fake: FakeBrevo, settings: BrevoSettings, done: MemoryDoneLog, sleeps: Sleeps
) -> None:
    async with HttpBrevoApi(fake.base_url, "wrong-key") as wrong:
        with pytest.raises(BrevoPermanentError) as error:
            await wrong.blacklist_sms(PHONE)
        assert error.value.status == 401
        effector = Effector(wrong, settings, done, retry=RetryPolicy(max_attempts=5), sleep=sleeps)
        help_action = action(ActionKind.SMS_HELP)
        assert await effector.handle(help_action) is Outcome.GAVE_UP
    assert len(fake.requests) == 2
    assert sleeps.delays == []
    assert fake.sms_sent == []
    assert fake.blacklisted == []
    assert help_action.action_id not in done


async def test_max_attempts_gives_up_and_leaves_the_action_not_done(
    fake: FakeBrevo, effector: Effector, done: MemoryDoneLog, sleeps: Sleeps
) -> None:
    help_action = action(ActionKind.SMS_HELP)
    fake.fail_next(SMS, times=10, status=500)
    assert await effector.handle(help_action) is Outcome.GAVE_UP
    assert len(fake.requests) == 4
    assert sleeps.delays == [0.25, 0.5, 1.0]
    assert help_action.action_id not in done
    assert effector.gave_up[help_action.action_id].startswith("BrevoTemporaryError: ")
    assert fake.sms_sent == []


async def test_an_action_given_up_on_is_tried_again_when_delivered_again(
    fake: FakeBrevo, effector: Effector, done: MemoryDoneLog
) -> None:
    help_action = action(ActionKind.SMS_HELP)
    fake.fail_next(SMS, times=4, status=502)
    assert await effector.handle(help_action) is Outcome.GAVE_UP
    assert await effector.handle(help_action) is Outcome.DONE
    assert len(fake.sms_sent) == 1
    assert help_action.action_id in done


async def test_a_slow_answer_times_out_and_is_retried(
    fake: FakeBrevo, settings: BrevoSettings, done: MemoryDoneLog, sleeps: Sleeps
) -> None:
    fake.slow_next(CONTACTS, times=1, delay_s=30)
    async with HttpBrevoApi(fake.base_url, API_KEY, timeout_s=0.2) as quick:
        with pytest.raises(BrevoTemporaryError, match="no answer"):
            await quick.blacklist_sms(PHONE)
        effector = Effector(quick, settings, done, retry=RetryPolicy(max_attempts=3), sleep=sleeps)
        assert await effector.handle(action(ActionKind.SMS_UNSUBSCRIBE)) is Outcome.DONE
    assert fake.blacklisted == [PHONE]


async def test_connection_errors_are_temporary_and_exhaust_the_attempts(
    settings: BrevoSettings, done: MemoryDoneLog, sleeps: Sleeps
) -> None:
    async with FakeBrevo(api_key=API_KEY) as gone:
        base_url = gone.base_url
    async with HttpBrevoApi(base_url, API_KEY, timeout_s=5) as nowhere:
        with pytest.raises(BrevoTemporaryError):
            await nowhere.send_sms("33612345678", "hi", "Tajo", "t")
        effector = Effector(nowhere, settings, done, retry=RetryPolicy(max_attempts=3), sleep=sleeps)
        assert await effector.handle(action(ActionKind.SMS_HELP)) is Outcome.GAVE_UP
    assert len(sleeps.delays) == 2


async def test_the_api_key_never_reaches_the_logs_or_reprs(
    fake: FakeBrevo,
    settings: BrevoSettings,
    api: HttpBrevoApi,
    effector: Effector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next(SMS, times=1, status=500)
    fake.fail_next(CONTACTS, times=1, status=400)
    assert await effector.handle(action(ActionKind.SMS_HELP)) is Outcome.DONE
    assert await effector.handle(action(ActionKind.SMS_HELP)) is Outcome.SKIPPED_DUPLICATE
    assert await effector.handle(action(ActionKind.SMS_UNSUBSCRIBE)) is Outcome.GAVE_UP
    async with HttpBrevoApi(fake.base_url, API_KEY + "-wrong") as wrong:
        wrong_effector = Effector(wrong, settings, MemoryDoneLog())
        assert await wrong_effector.handle(action(ActionKind.SMS_HELP, event=2)) is Outcome.GAVE_UP
        assert API_KEY not in repr(wrong)

    messages = [record.getMessage() for record in caplog.records]
    assert any("retrying" in message for message in messages)
    assert any("giving up" in message for message in messages)
    assert API_KEY not in caplog.text
    assert all(API_KEY not in message for message in messages)
    assert API_KEY not in repr(settings)
    assert API_KEY not in repr(api)

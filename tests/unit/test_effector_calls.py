"""Which Brevo call each action kind needs, and the settings the effector reads from the environment."""

import pytest

from domain.actions import Action, ActionKind, make_action
from streams.brevo_api import DEFAULT_BASE_URL, BrevoSettings
from streams.effector import HELP_TAG, BlacklistSms, InvalidAction, RetryPolicy, SendSms, brevo_call_for

PHONE = "+33612345678"
SETTINGS = BrevoSettings(
    api_key="k", base_url="http://brevo.test/v3", sms_sender="Tajo", help_text="Reply STOP"
)
NO_CALL = [
    ActionKind.MARKETING_ALERT,
    ActionKind.ALTERNATIVE_CHANNEL,
    ActionKind.SUPPORT_MESSAGE,
    ActionKind.LOYALTY_ENGAGEMENT,
    ActionKind.REWARDS_PAGE_VISIT,
]


def action(kind: ActionKind, address: str = PHONE, **data: str | int | None) -> Action:
    return make_action(kind, address, "e" * 32, 1_767_225_600_000, **data)


def test_every_kind_is_covered() -> None:
    assert {*NO_CALL, ActionKind.SMS_HELP, ActionKind.SMS_UNSUBSCRIBE} == set(ActionKind)


def test_help_sends_the_configured_text_from_the_configured_sender_to_the_digits() -> None:
    assert brevo_call_for(action(ActionKind.SMS_HELP), SETTINGS) == SendSms(
        recipient="33612345678", content="Reply STOP", sender="Tajo", tag=HELP_TAG
    )
    assert HELP_TAG == "tajo-help"


def test_unsubscribe_blacklists_the_phone_in_e164() -> None:
    assert brevo_call_for(action(ActionKind.SMS_UNSUBSCRIBE), SETTINGS) == BlacklistSms(phone=PHONE)


@pytest.mark.parametrize("kind", NO_CALL)
def test_other_kinds_need_no_brevo_call(kind: ActionKind) -> None:
    assert brevo_call_for(action(kind, "jane@example.com"), SETTINGS) is None


def test_the_phone_may_come_from_the_data_when_the_address_is_an_email() -> None:
    call = brevo_call_for(action(ActionKind.SMS_UNSUBSCRIBE, "jane@example.com", phone=PHONE), SETTINGS)
    assert call == BlacklistSms(phone=PHONE)


@pytest.mark.parametrize("kind", [ActionKind.SMS_HELP, ActionKind.SMS_UNSUBSCRIBE])
@pytest.mark.parametrize("address", ["jane@example.com", "33612345678", "+0612345678", "+33 6 12 34 56 78"])
def test_an_sms_action_without_an_e164_phone_is_invalid(kind: ActionKind, address: str) -> None:
    with pytest.raises(InvalidAction, match=r"E\.164"):
        brevo_call_for(action(kind, address), SETTINGS)


def test_settings_need_an_api_key() -> None:
    assert BrevoSettings.from_env({}) is None
    assert BrevoSettings.from_env({"BREVO_API_KEY": " "}) is None


def test_settings_defaults_and_overrides() -> None:
    defaults = BrevoSettings.from_env({"BREVO_API_KEY": "secret-key"})
    assert defaults is not None
    assert defaults.base_url == DEFAULT_BASE_URL == "https://api.brevo.com/v3"
    assert defaults.sms_sender == "Tajo"
    assert "STOP" in defaults.help_text
    custom = BrevoSettings.from_env(
        {
            "BREVO_API_KEY": "secret-key",
            "BREVO_API_BASE_URL": "http://127.0.0.1:9/v3/",
            "TAJO_SMS_SENDER": "TajoShop",
            "TAJO_SMS_HELP_TEXT": "Help: reply STOP to opt out",
        }
    )
    assert custom == BrevoSettings(
        api_key="secret-key",
        base_url="http://127.0.0.1:9/v3",
        sms_sender="TajoShop",
        help_text="Help: reply STOP to opt out",
    )
    assert "secret-key" not in repr(custom)


def test_backoff_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=3)
    assert [policy.delay_after(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert policy.delay_after(1, retry_after_s=2) == 2
    assert policy.delay_after(1, retry_after_s=60) == 3
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)

"""The effector: carries out the actions that need Brevo, at most once per action id, retrying failures."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from domain.actions import Action, ActionKind
from eventlog.dead_letters import safe_error
from streams.brevo_api import BrevoApi, BrevoPermanentError, BrevoSettings, BrevoTemporaryError

log = logging.getLogger(__name__)

HELP_TAG = "tajo-help"
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")

Sleep = Callable[[float], Awaitable[None]]


class InvalidAction(ValueError):
    """An action that needs Brevo but lacks what the call needs (an E.164 phone)."""


@dataclass(frozen=True, slots=True)
class SendSms:
    """`POST /transactionalSMS/send`: one transactional SMS."""

    recipient: str  # digits, country code first, no `+`
    content: str
    sender: str
    tag: str

    async def run(self, api: BrevoApi) -> None:
        """Makes the call."""
        await api.send_sms(self.recipient, self.content, self.sender, self.tag)


@dataclass(frozen=True, slots=True)
class BlacklistSms:
    """`PUT /contacts/{phone}?identifierType=phone_id` with `{"smsBlacklisted": true}`."""

    phone: str  # E.164, with `+`

    async def run(self, api: BrevoApi) -> None:
        """Makes the call."""
        await api.blacklist_sms(self.phone)


BrevoCall = SendSms | BlacklistSms


def _phone(action: Action) -> str:
    for candidate in (action.address, action.data.get("phone")):
        if isinstance(candidate, str) and _E164.fullmatch(candidate):
            return candidate
    raise InvalidAction(f"action {action.action_id} ({action.kind.value}) has no phone in E.164")


def brevo_call_for(action: Action, settings: BrevoSettings) -> BrevoCall | None:
    """The Brevo call an action needs, or None when it needs none; InvalidAction when it lacks a phone."""
    if action.kind is ActionKind.SMS_HELP:
        return SendSms(
            recipient=_phone(action).removeprefix("+"),
            content=settings.help_text,
            sender=settings.sms_sender,
            tag=HELP_TAG,
        )
    if action.kind is ActionKind.SMS_UNSUBSCRIBE:
        return BlacklistSms(phone=_phone(action))
    return None


class Outcome(StrEnum):
    """What handling an action came to."""

    DONE = "done"  # Brevo did it, and the action is marked done
    SKIPPED_DUPLICATE = "skipped_duplicate"  # already done before: nothing sent
    NOT_NEEDED = "not_needed"  # the kind needs no Brevo call
    GAVE_UP = "gave_up"  # a permanent failure or no attempt left: dead-letter it; it is not marked done


class DoneLog(Protocol):
    """The ids of the actions already carried out."""

    def __contains__(self, action_id: str, /) -> bool: ...

    def add(self, action_id: str, /) -> None:
        """Records that the action is carried out."""
        ...


class MemoryDoneLog:
    """A DoneLog in memory: it forgets on restart, so duplicates across restarts are not caught."""

    def __init__(self) -> None:
        self._done: set[str] = set()

    def __contains__(self, action_id: str, /) -> bool:
        return action_id in self._done

    def __len__(self) -> int:
        return len(self._done)

    def add(self, action_id: str, /) -> None:
        """Records that the action is carried out."""
        self._done.add(action_id)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: attempt n+1 waits base_delay_s * 2**(n-1), at most max_delay_s."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")

    def delay_after(self, attempt: int, retry_after_s: float | None = None) -> float:
        """How long to wait after failed attempt number `attempt` (1-based), honouring Brevo's Retry-After."""
        backoff = self.base_delay_s * 2.0 ** (attempt - 1)
        return min(max(backoff, retry_after_s or 0.0), self.max_delay_s)


class Effector:
    """Carries out SMS_HELP and SMS_UNSUBSCRIBE through Brevo; other kinds need nothing from it."""

    def __init__(
        self,
        api: BrevoApi,
        settings: BrevoSettings,
        done: DoneLog,
        *,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._api = api
        self._settings = settings
        self._done = done
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)  # how handling came out, for metrics
        # Why each action given up on was (type: message), until the caller that dead-letters it pops it.
        self.gave_up: dict[str, str] = {}

    async def handle(self, action: Action) -> Outcome:
        """Carries the action out unless it is done already; marks it done only once Brevo did it."""
        outcome = await self._handle(action)
        self.outcomes[outcome] += 1
        return outcome

    async def _handle(self, action: Action) -> Outcome:
        try:
            call = brevo_call_for(action, self._settings)
        except InvalidAction as error:
            log.warning("giving up on action %s: %s", action.action_id, error)
            return self._give_up(action, error)
        if call is None:
            return Outcome.NOT_NEEDED
        # One handler per action id at a time, so two deliveries of one action cannot both call Brevo.
        lock = self._locks.setdefault(action.action_id, asyncio.Lock())
        self._waiters[action.action_id] = self._waiters.get(action.action_id, 0) + 1
        try:
            async with lock:
                if action.action_id in self._done:
                    log.info("action %s (%s) already done, skipped", action.action_id, action.kind.value)
                    return Outcome.SKIPPED_DUPLICATE
                return await self._carry_out(action, call)
        finally:
            self._waiters[action.action_id] -= 1
            if not self._waiters[action.action_id]:
                del self._waiters[action.action_id]
                del self._locks[action.action_id]

    async def _carry_out(self, action: Action, call: BrevoCall) -> Outcome:
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                await call.run(self._api)
            except BrevoPermanentError as error:
                log.warning(
                    "giving up on action %s (%s), Brevo refused it: %s",
                    action.action_id,
                    action.kind.value,
                    error,
                )
                return self._give_up(action, error)
            except BrevoTemporaryError as error:
                if attempt == attempts:
                    log.warning(
                        "giving up on action %s (%s) after %d attempts: %s",
                        action.action_id,
                        action.kind.value,
                        attempts,
                        error,
                    )
                    return self._give_up(action, error)
                delay = self._retry.delay_after(attempt, error.retry_after_s)
                log.warning(
                    "action %s (%s) attempt %d/%d failed, retrying in %.3gs: %s",
                    action.action_id,
                    action.kind.value,
                    attempt,
                    attempts,
                    delay,
                    error,
                )
                await self._sleep(delay)
            else:
                self._done.add(action.action_id)
                log.info(
                    "action %s (%s) done after %d attempt(s)", action.action_id, action.kind.value, attempt
                )
                return Outcome.DONE
        raise AssertionError("unreachable: the last attempt returns")

    def _give_up(self, action: Action, error: Exception) -> Outcome:
        self.gave_up[action.action_id] = safe_error(f"{type(error).__name__}: {error}")[:500]
        return Outcome.GAVE_UP

"""The fold: one small handler per canonical event type, pure of any I/O, clock or other key.

A handler (`on_*`) brings a state it owns up to date with one event, in place, and returns the
actions the event asks for; side effects are returned as actions, never performed here. `step` is
the pure form, `step(state, event) -> (state, actions)`, leaving its argument untouched; the batch
fold (`domain.batch`) applies handlers to its own private copy of each key's state, so a batch of
events costs one decode and one encode per key instead of one copy per event.
Duplicates are recognized beside the state (`domain.dedup`), not here.
"""

from collections.abc import Callable
from dataclasses import dataclass

from domain.actions import Action, ActionKind, make_action
from domain.events import FoldEvent
from domain.score import engagement_score
from domain.state import (
    FEED_WINDOW,
    Alert,
    CampaignCounts,
    CustomerState,
    InboxMessage,
)
from schemas.event import CanonicalEvent
from schemas.event_types import EventType as T

STOP_WORDS = frozenset({"stop", "unsubscribe"})
HELP_WORDS = frozenset({"help", "info"})
REWARDS_PATHS = ("/rewards", "/loyalty")

Actions = tuple[Action, ...]
NO_ACTIONS: Actions = ()


@dataclass(frozen=True, slots=True)
class Step:
    """The state after one event, and the actions the event asks for."""

    state: CustomerState
    actions: Actions = ()


Handler = Callable[[CustomerState, FoldEvent], Actions]


def initial_state(address: str) -> CustomerState:
    """The state of a customer no event has touched yet."""
    if "@" in address:
        return CustomerState(address=address, kind="email", email=address)
    return CustomerState(address=address, kind="phone", phone=address)


def folds(event: FoldEvent) -> bool:
    """Whether the fold has a handler for the event's type (others stay in the log, unfolded)."""
    return event.type in HANDLERS


def apply(state: CustomerState, event: FoldEvent) -> Actions:
    """Brings `state`, owned by the caller, up to date with one event in place; returns its actions."""
    handler = HANDLERS.get(event.type)
    return NO_ACTIONS if handler is None else handler(state, event)


def step(state: CustomerState, event: CanonicalEvent | FoldEvent) -> Step:
    """The state after one event and the actions it asks for; `state` itself is left as it was."""
    if event.type not in HANDLERS:
        return Step(state)
    after = state.copy()
    return Step(after, apply(after, event if isinstance(event, FoldEvent) else FoldEvent.of(event)))


def fold(state: CustomerState, event: CanonicalEvent | FoldEvent) -> CustomerState:
    """The state after one event."""
    return step(state, event).state


def fold_all(state: CustomerState, events: list[CanonicalEvent]) -> CustomerState:
    """The state after each event in turn."""
    for event in events:
        state = fold(state, event)
    return state


# -- helpers


def _latest(current: int | None, at: int) -> int:
    return at if current is None or at > current else current


def _latest_reason(current_at: int | None, current: str | None, at: int, reason: str | None) -> str | None:
    """The reason of the newest event; on a tie the larger string, so arrival order never matters."""
    if current_at is None or at > current_at:
        return reason
    if at == current_at:
        return max(current or "", reason or "") or None
    return current


def _newest_alerts(alerts: tuple[Alert, ...], alert: Alert) -> tuple[Alert, ...]:
    """The newest FEED_WINDOW alerts by time then id, whatever their arrival order."""
    return tuple(sorted({*alerts, alert}, key=lambda a: (a.at, a.alert_id)))[-FEED_WINDOW:]


def _newest_messages(inbox: tuple[InboxMessage, ...], message: InboxMessage) -> tuple[InboxMessage, ...]:
    """The newest FEED_WINDOW support messages by time then id, whatever their arrival order."""
    return tuple(sorted({*inbox, message}, key=lambda m: (m.at, m.message_id)))[-FEED_WINDOW:]


def _campaign_counts(state: CustomerState, event: FoldEvent) -> list[CampaignCounts]:
    """The counts the event adds to: its campaign (`camp_id`), else each of its tags (`tag:<tag>`).

    A campaign's counts take the name it is first seen with.
    """
    campaigns = state.campaigns
    campaign = event.campaign
    if campaign is not None:
        counts = campaigns.get(campaign)
        if counts is None:
            counts = campaigns[campaign] = CampaignCounts()
        if counts.name is None and campaign:
            counts.name = event.campaign_name
        return [counts]
    found = []
    for tag in event.tags:  # a tag's counts have no name
        key = "tag:" + tag
        counts = campaigns.get(key)
        if counts is None:
            counts = campaigns[key] = CampaignCounts()
        found.append(counts)
    return found


def _action(kind: ActionKind, state: CustomerState, event: FoldEvent, **data: str | int | None) -> Action:
    return make_action(kind, state.address, event.event_id, event.at, **data)


def _loyalty(state: CustomerState, event: FoldEvent, what: str) -> Actions:
    for tag in event.tags:
        if "loyalty" in tag.lower():
            break
    else:
        return NO_ACTIONS
    state.loyalty_engagements += 1
    campaign = event.campaign_name
    return (_action(ActionKind.LOYALTY_ENGAGEMENT, state, event, activity=what, campaign=campaign),)


def _marketing_off(state: CustomerState, at: int) -> None:
    state.marketing_off_at = _latest(state.marketing_off_at, at)


# -- email


# The most frequent handlers (sends, deliveries, opens, clicks, soft bounces) move their times forward
# inline rather than through `_latest`, and search in loops rather than with `any()` over a generator:
# between them they fold most events.


def on_sent(state: CustomerState, event: FoldEvent) -> Actions:
    """An email handed to Brevo."""
    at = event.at
    channel = state.email_channel
    channel.sent += 1
    last = channel.last_sent_at
    if last is None or at > last:
        channel.last_sent_at = at
    return NO_ACTIONS


def on_delivered(state: CustomerState, event: FoldEvent) -> Actions:
    """A delivery: counted, last delivery time moves forward."""
    at = event.at
    channel = state.email_channel
    channel.delivered += 1
    last = channel.last_delivered_at
    if last is None or at > last:
        channel.last_delivered_at = at
    for counts in _campaign_counts(state, event):
        counts.delivered += 1
    return NO_ACTIONS


def on_opened(state: CustomerState, event: FoldEvent, *, unique: bool = False) -> Actions:
    """An open: counted, last open time moves forward, the score rises."""
    at = event.at
    channel = state.email_channel
    if unique:
        channel.unique_opens += 1
    else:
        channel.opens += 1
    last = channel.last_opened_at
    if last is None or at > last:
        channel.last_opened_at = at
    state.score = engagement_score(channel.opens, channel.unique_opens, channel.clicks)
    for counts in _campaign_counts(state, event):
        counts.opens += 1
    return _loyalty(state, event, "email_opened") if event.tags else NO_ACTIONS


def on_unique_opened(state: CustomerState, event: FoldEvent) -> Actions:
    """A first open of an email: counted apart, so a double subscription does not count it twice."""
    return on_opened(state, event, unique=True)


def on_proxy_opened(state: CustomerState, _event: FoldEvent) -> Actions:
    """A machine open (Apple Mail privacy): counted apart, no score, no last-open time."""
    state.email_channel.proxy_opens += 1
    return NO_ACTIONS


def on_clicked(state: CustomerState, event: FoldEvent) -> Actions:
    """A click: the score rises more than for an open; a rewards or loyalty page counts as a visit."""
    at = event.at
    channel = state.email_channel
    channel.clicks += 1
    last = channel.last_clicked_at
    if last is None or at > last:
        channel.last_clicked_at = at
    state.score = engagement_score(channel.opens, channel.unique_opens, channel.clicks)
    for counts in _campaign_counts(state, event):
        counts.clicks += 1
    actions: Actions = NO_ACTIONS
    url = event.link or ""
    for path in REWARDS_PATHS:
        if path in url:
            state.rewards_visits += 1
            state.last_rewards_visit_at = _latest(state.last_rewards_visit_at, at)
            visit = _action(ActionKind.REWARDS_PAGE_VISIT, state, event, source="email", referrer_url=url)
            actions = (visit,)
            break
    return (actions + _loyalty(state, event, "email_clicked")) if event.tags else actions


def on_soft_bounced(state: CustomerState, event: FoldEvent) -> Actions:
    """A temporary delivery problem: counted."""
    at = event.at
    channel = state.email_channel
    channel.soft_bounces += 1
    last = channel.last_bounce_at
    if last is None or at > last:
        channel.last_bounce_at = at
    for counts in _campaign_counts(state, event):
        counts.bounces += 1
    return NO_ACTIONS


def on_hard_bounced(state: CustomerState, event: FoldEvent) -> Actions:
    """An invalid address: marked invalid with its reason (by event time); SMS is suggested instead."""
    at = event.at
    channel = state.email_channel
    channel.hard_bounce_reason = _latest_reason(
        channel.last_hard_bounce_at, channel.hard_bounce_reason, at, event.reason
    )
    channel.hard_bounces += 1
    channel.last_bounce_at = _latest(channel.last_bounce_at, at)
    channel.last_hard_bounce_at = _latest(channel.last_hard_bounce_at, at)
    for counts in _campaign_counts(state, event):
        counts.bounces += 1
    return (_action(ActionKind.ALTERNATIVE_CHANNEL, state, event, channel="sms", phone=state.phone),)


def on_spam(state: CustomerState, event: FoldEvent) -> Actions:
    """A spam report: marketing off, marked spam-reported, and the marketing team alerted."""
    at = event.at
    channel = state.email_channel
    channel.spam_reports += 1
    channel.last_spam_at = _latest(channel.last_spam_at, at)
    state.spam_reported = True
    _marketing_off(state, at)
    campaign = event.campaign or ",".join(event.tags) or None
    alert = _action(ActionKind.MARKETING_ALERT, state, event, alert="spam_report", campaign=campaign)
    record = Alert(
        alert_id=alert.action_id, kind="spam_report", address=state.address, at=at, campaign=campaign
    )
    state.alerts = _newest_alerts(state.alerts, record)
    for counts in _campaign_counts(state, event):
        counts.spam += 1
    return (alert,)


def on_unsubscribed(state: CustomerState, event: FoldEvent) -> Actions:
    """An unsubscribe: marketing email off (by event time)."""
    at = event.at
    channel = state.email_channel
    channel.unsubscribes += 1
    channel.last_unsubscribed_at = _latest(channel.last_unsubscribed_at, at)
    _marketing_off(state, at)
    for counts in _campaign_counts(state, event):
        counts.unsubscribes += 1
    return NO_ACTIONS


def on_error(state: CustomerState, _event: FoldEvent) -> Actions:
    """A sending error at Brevo: counted."""
    state.email_channel.errors += 1
    return NO_ACTIONS


# -- SMS


def on_sms_sent(state: CustomerState, event: FoldEvent) -> Actions:
    """An SMS handed to the operator."""
    sms = state.sms
    sms.sent += 1
    sms.last_sent_at = _latest(sms.last_sent_at, event.at)
    return NO_ACTIONS


def on_sms_delivered(state: CustomerState, event: FoldEvent) -> Actions:
    """An SMS delivered: counted; a delivery newer than a failure clears the failure."""
    sms = state.sms
    sms.delivered += 1
    sms.last_delivered_at = _latest(sms.last_delivered_at, event.at)
    return NO_ACTIONS


def on_sms_failed(state: CustomerState, event: FoldEvent) -> Actions:
    """An SMS failure: recorded with its reason; email is suggested when the customer has one."""
    at = event.at
    sms = state.sms
    sms.last_failure_reason = _latest_reason(sms.last_failed_at, sms.last_failure_reason, at, event.reason)
    sms.failed += 1
    sms.last_failed_at = _latest(sms.last_failed_at, at)
    if state.email is None:
        return NO_ACTIONS
    return (_action(ActionKind.ALTERNATIVE_CHANNEL, state, event, channel="email", email=state.email),)


def on_sms_replied(state: CustomerState, event: FoldEvent) -> Actions:
    """A reply: STOP/UNSUBSCRIBE unsubscribes, HELP/INFO asks for help, anything else goes to support."""
    at = event.at
    sms = state.sms
    sms.replies += 1
    sms.last_reply_at = _latest(sms.last_reply_at, at)
    text = event.text or ""
    word = text.lower().strip()
    if word in STOP_WORDS:
        sms.last_stop_at = _latest(sms.last_stop_at, at)
        return (_action(ActionKind.SMS_UNSUBSCRIBE, state, event, phone=state.address),)
    if word in HELP_WORDS:
        return (_action(ActionKind.SMS_HELP, state, event, phone=state.address),)
    action = _action(ActionKind.SUPPORT_MESSAGE, state, event, phone=state.address, text=text)
    message = InboxMessage(message_id=action.action_id, address=state.address, at=at, text=text)
    state.inbox = _newest_messages(state.inbox, message)
    return (action,)


# -- contacts


def on_contact(state: CustomerState, event: FoldEvent) -> Actions:
    """A contact created or updated: known, linked to its phone, its lists recorded, undeleted if newer."""
    at = event.at
    state.contact_known = True
    state.lists = tuple(sorted({*state.lists, *event.list_ids}))
    state.last_contact_at = _latest(state.last_contact_at, at)
    phone = event.phone
    if state.kind == "email" and phone is not None:
        _link_phone(state, at, phone)
    blacklisted = event.email_blacklisted
    if blacklisted is True:
        state.marketing_off_at = _latest(state.marketing_off_at, at)
    elif blacklisted is False:
        state.marketing_on_at = _latest(state.marketing_on_at, at)
    return NO_ACTIONS


def _newest_link(state: CustomerState, at: int, other: str, current: str | None) -> bool:
    """Whether this link wins: the newest by event time, on a tie the larger identity."""
    if state.linked_at is None or at > state.linked_at:
        state.linked_at = at
        return True
    return at == state.linked_at and other > (current or "")


def _link_phone(state: CustomerState, at: int, phone: str) -> None:
    if _newest_link(state, at, phone, state.phone):
        state.phone = phone


def on_list_addition(state: CustomerState, event: FoldEvent) -> Actions:
    """Added to lists: the lists are recorded."""
    state.contact_known = True
    state.lists = tuple(sorted({*state.lists, *event.list_ids}))
    return NO_ACTIONS


def on_contact_deleted(state: CustomerState, event: FoldEvent) -> Actions:
    """A contact deleted: hidden from the projections (by event time); the log keeps its history."""
    state.last_deleted_at = _latest(state.last_deleted_at, event.at)
    return NO_ACTIONS


def on_contact_linked(state: CustomerState, event: FoldEvent) -> Actions:
    """A phone tied to a contact's email: the phone's state learns the email."""
    email = event.email
    if email and _newest_link(state, event.at, email, state.email):
        state.email = email
    return NO_ACTIONS


HANDLERS: dict[T, Handler] = {
    T.EMAIL_SENT: on_sent,
    T.EMAIL_DELIVERED: on_delivered,
    T.EMAIL_OPENED: on_opened,
    T.EMAIL_UNIQUE_OPENED: on_unique_opened,
    T.EMAIL_PROXY_OPENED: on_proxy_opened,
    T.EMAIL_UNIQUE_PROXY_OPENED: on_proxy_opened,
    T.EMAIL_CLICKED: on_clicked,
    T.EMAIL_SOFT_BOUNCED: on_soft_bounced,
    T.EMAIL_HARD_BOUNCED: on_hard_bounced,
    T.EMAIL_SPAM: on_spam,
    T.EMAIL_UNSUBSCRIBED: on_unsubscribed,
    T.EMAIL_ERROR: on_error,
    T.SMS_SENT: on_sms_sent,
    T.SMS_DELIVERED: on_sms_delivered,
    T.SMS_FAILED: on_sms_failed,
    T.SMS_REPLIED: on_sms_replied,
    T.CONTACT_CREATED: on_contact,
    T.CONTACT_UPDATED: on_contact,
    T.CONTACT_LIST_ADDITION: on_list_addition,
    T.CONTACT_DELETED: on_contact_deleted,
    T.CONTACT_LINKED: on_contact_linked,
}

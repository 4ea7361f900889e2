"""The fold: `step(state, event) -> (state, actions)`, pure, one small handler per canonical event type.

A handler sees only its own key's state and the event. Side effects are returned as actions, never
performed here. A duplicate (an event id already in the state) changes nothing and asks for nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass

from schemas.brevo import contact_phone, normalize_email
from schemas.event import CanonicalEvent, epoch_ms
from schemas.event_types import EventType as T
from streams import payload
from streams.actions import Action, ActionKind, make_action
from streams.score import engagement_score
from streams.state import (
    FEED_WINDOW,
    SEEN_WINDOW,
    Alert,
    CampaignCounts,
    CustomerState,
    InboxMessage,
)

STOP_WORDS = frozenset({"stop", "unsubscribe"})
HELP_WORDS = frozenset({"help", "info"})
REWARDS_PATHS = ("/rewards", "/loyalty")


@dataclass(frozen=True, slots=True)
class Step:
    """The state after one event, and the actions the event asks for."""

    state: CustomerState
    actions: tuple[Action, ...] = ()


Handler = Callable[[CustomerState, CanonicalEvent], Step]


def initial_state(address: str) -> CustomerState:
    """The state of a customer no event has touched yet."""
    if "@" in address:
        return CustomerState(address=address, kind="email", email=address)
    return CustomerState(address=address, kind="phone", phone=address)


def step(state: CustomerState, event: CanonicalEvent) -> Step:
    """The state after one event and the actions it asks for; a duplicate or unfolded type is a no-op."""
    handler = HANDLERS.get(event.type)
    if handler is None or event.event_id in state.seen:
        return Step(state)
    done = handler(state, event)
    seen = (*state.seen, event.event_id)[-SEEN_WINDOW:]
    return Step(done.state.model_copy(update={"seen": seen}), done.actions)


def fold(state: CustomerState, event: CanonicalEvent) -> CustomerState:
    """The state after one event."""
    return step(state, event).state


def fold_all(state: CustomerState, events: list[CanonicalEvent]) -> CustomerState:
    """The state after each event in turn."""
    for event in events:
        state = fold(state, event)
    return state


# -- helpers


def _at(event: CanonicalEvent) -> int:
    return epoch_ms(event.occurred_at)


def _latest(current: int | None, event: CanonicalEvent) -> int:
    return _at(event) if current is None else max(current, _at(event))


def _latest_reason(
    current_at: int | None, current: str | None, event: CanonicalEvent, reason: str | None
) -> str | None:
    """The reason of the newest event; on a tie the larger string, so arrival order never matters."""
    if current_at is None or _at(event) > current_at:
        return reason
    if _at(event) == current_at:
        return max(current or "", reason or "") or None
    return current


def _newest_alerts(alerts: tuple[Alert, ...], alert: Alert) -> tuple[Alert, ...]:
    """The newest FEED_WINDOW alerts by time then id, whatever their arrival order."""
    return tuple(sorted({*alerts, alert}, key=lambda a: (a.at, a.alert_id)))[-FEED_WINDOW:]


def _newest_messages(inbox: tuple[InboxMessage, ...], message: InboxMessage) -> tuple[InboxMessage, ...]:
    """The newest FEED_WINDOW support messages by time then id, whatever their arrival order."""
    return tuple(sorted({*inbox, message}, key=lambda m: (m.at, m.message_id)))[-FEED_WINDOW:]


def _email(state: CustomerState, **changes: object) -> CustomerState:
    channel = state.email_channel.model_copy(update=changes)
    score = engagement_score(channel.opens, channel.unique_opens, channel.clicks)
    return state.model_copy(update={"email_channel": channel, "score": score})


def _sms(state: CustomerState, **changes: object) -> CustomerState:
    return state.model_copy(update={"sms": state.sms.model_copy(update=changes)})


def _count_campaign(state: CustomerState, event: CanonicalEvent, field: str) -> CustomerState:
    keys = payload.campaign_keys(event)
    if not keys:
        return state
    campaigns = dict(state.campaigns)
    for key in keys:
        counts = campaigns.get(key, CampaignCounts())
        name = counts.name or (payload.campaign_name(event) if event.campaign else None)
        campaigns[key] = counts.model_copy(update={field: getattr(counts, field) + 1, "name": name})
    return state.model_copy(update={"campaigns": campaigns})


def _action(
    kind: ActionKind, state: CustomerState, event: CanonicalEvent, **data: str | int | None
) -> Action:
    return make_action(kind, state.address, event.event_id, _at(event), **data)


def _loyalty(state: CustomerState, event: CanonicalEvent, what: str) -> Step:
    if not any("loyalty" in tag.lower() for tag in payload.tags(event)):
        return Step(state)
    engaged = state.model_copy(update={"loyalty_engagements": state.loyalty_engagements + 1})
    action = _action(
        ActionKind.LOYALTY_ENGAGEMENT, state, event, activity=what, campaign=payload.campaign_name(event)
    )
    return Step(engaged, (action,))


def _marketing_off(state: CustomerState, event: CanonicalEvent) -> CustomerState:
    return state.model_copy(update={"marketing_off_at": _latest(state.marketing_off_at, event)})


# -- email


def on_sent(state: CustomerState, event: CanonicalEvent) -> Step:
    """An email handed to Brevo."""
    channel = state.email_channel
    return Step(_email(state, sent=channel.sent + 1, last_sent_at=_latest(channel.last_sent_at, event)))


def on_delivered(state: CustomerState, event: CanonicalEvent) -> Step:
    """A delivery: counted, last delivery time moves forward."""
    channel = state.email_channel
    state = _email(
        state, delivered=channel.delivered + 1, last_delivered_at=_latest(channel.last_delivered_at, event)
    )
    return Step(_count_campaign(state, event, "delivered"))


def _opened(state: CustomerState, event: CanonicalEvent, counter: str) -> Step:
    channel = state.email_channel
    state = _email(
        state,
        **{counter: getattr(channel, counter) + 1},
        last_opened_at=_latest(channel.last_opened_at, event),
    )
    state = _count_campaign(state, event, "opens")
    return _loyalty(state, event, "email_opened")


def on_opened(state: CustomerState, event: CanonicalEvent) -> Step:
    """An open: counted, last open time moves forward, the score rises."""
    return _opened(state, event, "opens")


def on_unique_opened(state: CustomerState, event: CanonicalEvent) -> Step:
    """A first open of an email: counted apart, so a double subscription does not count it twice."""
    return _opened(state, event, "unique_opens")


def on_proxy_opened(state: CustomerState, _event: CanonicalEvent) -> Step:
    """A machine open (Apple Mail privacy): counted apart, no score, no last-open time."""
    return Step(_email(state, proxy_opens=state.email_channel.proxy_opens + 1))


def on_clicked(state: CustomerState, event: CanonicalEvent) -> Step:
    """A click: the score rises more than for an open; a rewards or loyalty page counts as a visit."""
    channel = state.email_channel
    state = _email(state, clicks=channel.clicks + 1, last_clicked_at=_latest(channel.last_clicked_at, event))
    state = _count_campaign(state, event, "clicks")
    actions: tuple[Action, ...] = ()
    url = payload.link(event)
    if any(path in url for path in REWARDS_PATHS):
        state = state.model_copy(
            update={
                "rewards_visits": state.rewards_visits + 1,
                "last_rewards_visit_at": _latest(state.last_rewards_visit_at, event),
            }
        )
        actions = (_action(ActionKind.REWARDS_PAGE_VISIT, state, event, source="email", referrer_url=url),)
    loyal = _loyalty(state, event, "email_clicked")
    return Step(loyal.state, actions + loyal.actions)


def on_soft_bounced(state: CustomerState, event: CanonicalEvent) -> Step:
    """A temporary delivery problem: counted."""
    channel = state.email_channel
    state = _email(
        state, soft_bounces=channel.soft_bounces + 1, last_bounce_at=_latest(channel.last_bounce_at, event)
    )
    return Step(_count_campaign(state, event, "bounces"))


def on_hard_bounced(state: CustomerState, event: CanonicalEvent) -> Step:
    """An invalid address: marked invalid with its reason (by event time); SMS is suggested instead."""
    channel = state.email_channel
    reason = _latest_reason(
        channel.last_hard_bounce_at, channel.hard_bounce_reason, event, payload.reason(event)
    )
    state = _email(
        state,
        hard_bounces=channel.hard_bounces + 1,
        last_bounce_at=_latest(channel.last_bounce_at, event),
        last_hard_bounce_at=_latest(channel.last_hard_bounce_at, event),
        hard_bounce_reason=reason,
    )
    suggestion = _action(ActionKind.ALTERNATIVE_CHANNEL, state, event, channel="sms", phone=state.phone)
    return Step(_count_campaign(state, event, "bounces"), (suggestion,))


def on_spam(state: CustomerState, event: CanonicalEvent) -> Step:
    """A spam report: marketing off, marked spam-reported, and the marketing team alerted."""
    channel = state.email_channel
    state = _email(
        state, spam_reports=channel.spam_reports + 1, last_spam_at=_latest(channel.last_spam_at, event)
    )
    state = _marketing_off(state.model_copy(update={"spam_reported": True}), event)
    campaign = event.campaign or ",".join(payload.tags(event)) or None
    alert = _action(ActionKind.MARKETING_ALERT, state, event, alert="spam_report", campaign=campaign)
    record = Alert(
        alert_id=alert.action_id, kind="spam_report", address=state.address, at=_at(event), campaign=campaign
    )
    state = state.model_copy(update={"alerts": _newest_alerts(state.alerts, record)})
    return Step(_count_campaign(state, event, "spam"), (alert,))


def on_unsubscribed(state: CustomerState, event: CanonicalEvent) -> Step:
    """An unsubscribe: marketing email off (by event time)."""
    channel = state.email_channel
    state = _email(
        state,
        unsubscribes=channel.unsubscribes + 1,
        last_unsubscribed_at=_latest(channel.last_unsubscribed_at, event),
    )
    return Step(_count_campaign(_marketing_off(state, event), event, "unsubscribes"))


def on_error(state: CustomerState, _event: CanonicalEvent) -> Step:
    """A sending error at Brevo: counted."""
    return Step(_email(state, errors=state.email_channel.errors + 1))


# -- SMS


def on_sms_sent(state: CustomerState, event: CanonicalEvent) -> Step:
    """An SMS handed to the operator."""
    return Step(_sms(state, sent=state.sms.sent + 1, last_sent_at=_latest(state.sms.last_sent_at, event)))


def on_sms_delivered(state: CustomerState, event: CanonicalEvent) -> Step:
    """An SMS delivered: counted; a delivery newer than a failure clears the failure."""
    sms = state.sms
    return Step(
        _sms(state, delivered=sms.delivered + 1, last_delivered_at=_latest(sms.last_delivered_at, event))
    )


def on_sms_failed(state: CustomerState, event: CanonicalEvent) -> Step:
    """An SMS failure: recorded with its reason; email is suggested when the customer has one."""
    sms = state.sms
    reason = _latest_reason(sms.last_failed_at, sms.last_failure_reason, event, payload.reason(event))
    state = _sms(
        state,
        failed=sms.failed + 1,
        last_failed_at=_latest(sms.last_failed_at, event),
        last_failure_reason=reason,
    )
    if state.email is None:
        return Step(state)
    return Step(
        state, (_action(ActionKind.ALTERNATIVE_CHANNEL, state, event, channel="email", email=state.email),)
    )


def on_sms_replied(state: CustomerState, event: CanonicalEvent) -> Step:
    """A reply: STOP/UNSUBSCRIBE unsubscribes, HELP/INFO asks for help, anything else goes to support."""
    sms = state.sms
    state = _sms(state, replies=sms.replies + 1, last_reply_at=_latest(sms.last_reply_at, event))
    text = payload.reply_text(event)
    word = text.lower().strip()
    if word in STOP_WORDS:
        state = _sms(state, last_stop_at=_latest(sms.last_stop_at, event))
        return Step(state, (_action(ActionKind.SMS_UNSUBSCRIBE, state, event, phone=state.address),))
    if word in HELP_WORDS:
        return Step(state, (_action(ActionKind.SMS_HELP, state, event, phone=state.address),))
    action = _action(ActionKind.SUPPORT_MESSAGE, state, event, phone=state.address, text=text)
    message = InboxMessage(message_id=action.action_id, address=state.address, at=_at(event), text=text)
    return Step(state.model_copy(update={"inbox": _newest_messages(state.inbox, message)}), (action,))


# -- contacts


def on_contact(state: CustomerState, event: CanonicalEvent) -> Step:
    """A contact created or updated: known, linked to its phone, its lists recorded, undeleted if newer."""
    changes: dict[str, object] = {
        "contact_known": True,
        "lists": tuple(sorted({*state.lists, *payload.list_ids(event)})),
        "last_contact_at": _latest(state.last_contact_at, event),
    }
    phone = contact_phone(event.payload)
    if state.kind == "email" and phone is not None:
        changes |= _link(state, event, "phone", phone)
    blacklisted = payload.flag(event, "emailBlacklisted")
    if blacklisted is True:
        changes["marketing_off_at"] = _latest(state.marketing_off_at, event)
    elif blacklisted is False:
        changes["marketing_on_at"] = _latest(state.marketing_on_at, event)
    return Step(state.model_copy(update=changes))


def _link(state: CustomerState, event: CanonicalEvent, field: str, other: str) -> dict[str, object]:
    """Links the other identity when this event is the newest link (on a tie, the larger identity)."""
    current: str | None = getattr(state, field)
    if state.linked_at is None or _at(event) > state.linked_at:
        return {field: other, "linked_at": _at(event)}
    if _at(event) == state.linked_at and other > (current or ""):
        return {field: other}
    return {}


def on_list_addition(state: CustomerState, event: CanonicalEvent) -> Step:
    """Added to lists: the lists are recorded."""
    lists = tuple(sorted({*state.lists, *payload.list_ids(event)}))
    return Step(state.model_copy(update={"contact_known": True, "lists": lists}))


def on_contact_deleted(state: CustomerState, event: CanonicalEvent) -> Step:
    """A contact deleted: hidden from the projections (by event time); the log keeps its history."""
    return Step(state.model_copy(update={"last_deleted_at": _latest(state.last_deleted_at, event)}))


def on_contact_linked(state: CustomerState, event: CanonicalEvent) -> Step:
    """A phone tied to a contact's email: the phone's state learns the email."""
    email = normalize_email(event.payload.get("email"))
    return Step(state.model_copy(update=_link(state, event, "email", email)) if email else state)


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

"""Segment's message format (track, identify, page, screen, group, alias) as cxm events.

Identity comes only from identity fields, as Segment defines them: ``userId``, ``anonymousId``,
the ``traits`` of an identify call and ``context.traits`` of any call. ``properties`` describe
the event (an invitee's or a gift recipient's address), and a group call's ``traits`` describe
the group (a company's address is shared by all its members), so neither ever identifies the
sender. ``sentAt`` (the message's, else the batch's) travels as ``sent_at``, so the device's
clock error can be taken out of ``timestamp`` when the event is stored.
"""

from __future__ import annotations

from typing import Any


def _pick(*sources: Any, key: str) -> Any:
    for source in sources:
        if isinstance(source, dict) and source.get(key) not in (None, ""):
            return source[key]
    return None


def to_event(
    message: Any, kind: str | None = None, batch_context: Any = None, batch_sent_at: Any = None
) -> Any:
    """One Segment message as a cxm event dict; a non-object is passed on to be rejected.

    ``batch_context`` / ``batch_sent_at`` are a ``/v1/batch`` body's ``context`` and
    ``sentAt``, used where the message has none of its own. Fields without a value are left
    out (``event_id`` is always there).
    """
    if not isinstance(message, dict):
        return message
    get = message.get
    kind = kind or get("type") or "track"
    properties = get("properties")
    if not isinstance(properties, dict):
        properties = {}
    context = get("context")
    if not isinstance(context, dict):
        context = batch_context if isinstance(batch_context, dict) else None
    traits = get("traits")
    if not isinstance(traits, dict):
        traits = None
    context_traits = context.get("traits") if context else None
    person = traits if kind == "identify" else None
    event: dict[str, Any] = {"event_id": get("messageId"), "type": kind}
    found = {
        "timestamp": get("timestamp") or get("originalTimestamp"),
        "sent_at": get("sentAt") or batch_sent_at,
        "user_id": get("userId"),
        "anonymous_id": get("anonymousId"),
        "context": context,
    }
    if person is not None or context_traits is not None:
        found["email"] = _pick(person, context_traits, key="email")
        found["phone"] = _pick(person, context_traits, key="phone")
    found["touchpoint"] = _pick(properties, context, key="touchpoint")
    found["channel"] = _pick(context, properties, key="channel")
    props = dict(properties)
    if kind == "track":
        found["name"] = get("event")
    elif kind in ("page", "screen"):
        found["name"] = get("name") or kind
    elif kind == "identify":
        found["traits"] = person or None
    elif kind == "group":
        props["group_id"] = get("groupId")
        if traits:
            props["group_traits"] = traits
    elif kind == "alias" and get("previousId") is not None:
        # previousId is the id the person had before (usually the anonymous id), so it links
        # as an anonymous id unless the message names one itself.
        if found["anonymous_id"] is None:
            found["anonymous_id"] = message["previousId"]
        props["previous_id"] = message["previousId"]
    found["properties"] = props or None
    for key, value in found.items():
        if value is not None:
            event[key] = value
    return event

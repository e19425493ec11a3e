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
    ``sentAt``, used where the message has none of its own.
    """
    if not isinstance(message, dict):
        return message
    kind = kind or message.get("type") or "track"
    properties = message.get("properties") if isinstance(message.get("properties"), dict) else {}
    context = message.get("context") if isinstance(message.get("context"), dict) else None
    if context is None and isinstance(batch_context, dict):
        context = batch_context
    traits = message.get("traits") if isinstance(message.get("traits"), dict) else None
    context_traits = (context or {}).get("traits")
    person = traits if kind == "identify" else None
    event: dict[str, Any] = {
        "event_id": message.get("messageId"),
        "type": kind,
        "timestamp": message.get("timestamp") or message.get("originalTimestamp"),
        "sent_at": message.get("sentAt") or batch_sent_at,
        "user_id": message.get("userId"),
        "anonymous_id": message.get("anonymousId"),
        "context": context,
        "email": _pick(person, context_traits, key="email"),
        "phone": _pick(person, context_traits, key="phone"),
        "touchpoint": _pick(properties, context, key="touchpoint"),
        "channel": _pick(context, properties, key="channel"),
    }
    props = dict(properties or {})
    if kind == "track":
        event["name"] = message.get("event")
    elif kind in ("page", "screen"):
        event["name"] = message.get("name") or kind
    elif kind == "identify":
        event["traits"] = person or None
    elif kind == "group":
        props["group_id"] = message.get("groupId")
        if traits:
            props["group_traits"] = traits
    elif kind == "alias" and message.get("previousId") is not None:
        # previousId is the id the person had before (usually the anonymous id), so it links
        # as an anonymous id unless the message names one itself.
        if event["anonymous_id"] is None:
            event["anonymous_id"] = message["previousId"]
        props["previous_id"] = message["previousId"]
    event["properties"] = props or None
    return {k: v for k, v in event.items() if v is not None or k in ("event_id",)}

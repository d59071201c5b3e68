"""Core events as JSON-able values, for the trip from one node to another.

An event is [its class name in core.events, {field: value}]. A Room travels whole (id, kind, name,
leader, members, invitations, topic), as the publishing node saw it, so that every node renders the event
alike; a Message travels as its stored row (store.bodies types its body again on arrival).
"""

import dataclasses

from ..core import events as core_events
from ..core.model import Message, Room
from ..store import bodies


def _value(value):
    if isinstance(value, Room):
        room = [value.id, value.kind, value.name, value.leader, sorted(value.members), value.invited]
        return {"$room": [*room, value.topic, value.topic_by, value.topic_at]}
    if isinstance(value, Message):
        kind, body = bodies.encode(value.body)
        return {"$message": [value.id, value.room_id, value.sender, kind, body, value.ts]}
    return value


def _unvalue(value):
    if isinstance(value, dict):
        if "$room" in value:
            rid, kind, name, leader, members, invited, topic, by, at = value["$room"]
            return Room(rid, kind, name, leader, set(members), dict(invited), topic, by, at)
        if "$message" in value:
            return bodies.message(value["$message"])
    return value


def encode(event: core_events.Event) -> list:
    fields = {f.name: _value(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return [type(event).__name__, fields]


def decode(raw: list) -> core_events.Event:
    name, fields = raw
    cls = getattr(core_events, name, None)
    if not (isinstance(cls, type) and issubclass(cls, core_events.Event)):
        raise ValueError(f"not an event: {name!r}")
    return cls(**{key: _unvalue(value) for key, value in fields.items()})

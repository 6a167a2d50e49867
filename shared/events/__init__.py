"""Events: the CloudEvents envelope, the registry and the catalogue of Upstream's events."""

from shared.events.envelope import CloudEvent, DataClassification, EnvelopeError
from shared.events.registry import EventRegistry, EventType, Topic, split_type

__all__ = [
    "CloudEvent",
    "DataClassification",
    "EnvelopeError",
    "EventRegistry",
    "EventType",
    "Topic",
    "split_type",
]

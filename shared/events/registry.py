"""One registry maps event type <-> payload model <-> topic.

Type names are namespaced and versioned: ``uk.upstream.<service>.<aggregate>.<event>.v<major>``.
A consumer that handles ``…v1`` sends ``…v2`` to its dead-letter topic instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from shared.context import current_trace, new_id
from shared.events.envelope import CloudEvent, DataClassification, utc_now

TYPE_PREFIX = "uk.upstream"
_VERSIONED = re.compile(r"^(?P<family>.+)\.v(?P<major>[0-9]+)$")


def split_type(event_type: str) -> tuple[str, int] | None:
    """``uk.upstream.x.happened.v2`` -> (``uk.upstream.x.happened``, 2); None if unversioned."""
    match = _VERSIONED.match(event_type)
    return (match["family"], int(match["major"])) if match else None


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    partitions: int | None = None  # None: the deployment's default
    retention_ms: int | None = None  # how long the broker keeps records; None: its default
    # A bulk lane: the twin of an interactive topic, carrying the same event types for the
    # aggregates that are bulk work (a feed's flags, the outreach cases they open), so that
    # consumers and relays serve the interactive topic first (docs/events.md, Bulk lanes).
    bulk: bool = False


@dataclass(frozen=True)
class EventType:
    name: str
    payload: type[BaseModel]
    topic: Topic
    description: str
    classification: DataClassification

    @property
    def family(self) -> str:
        return split_type(self.name)[0]  # type: ignore[index]

    @property
    def major(self) -> int:
        return split_type(self.name)[1]  # type: ignore[index]


class EventRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, EventType] = {}
        self._by_payload: dict[type[BaseModel], EventType] = {}
        self._topics: dict[str, Topic] = {}
        self._bulk_lanes: dict[str, Topic] = {}  # interactive topic name -> its bulk twin

    def topic(
        self,
        name: str,
        description: str,
        partitions: int | None = None,
        retention_ms: int | None = None,
    ) -> Topic:
        declared = Topic(name, description, partitions, retention_ms)
        topic = self._topics.setdefault(name, declared)
        if topic != declared:
            raise ValueError(f"topic {name!r} is already declared differently")
        return topic

    def bulk_lane(self, of: Topic, name: str, description: str) -> Topic:
        """Declare the bulk twin of ``of``: the same event types, partitions and retention,
        for bulk work (``Outbox.add(..., bulk=True)``); consumers of ``of`` read it too,
        after ``of``."""
        if of.bulk or self._topics.get(of.name) != of:
            raise ValueError(f"{of.name!r} is not an interactive topic of this registry")
        twin = Topic(name, description, of.partitions, of.retention_ms, bulk=True)
        if self._topics.setdefault(name, twin) != twin:
            raise ValueError(f"topic {name!r} is already declared differently")
        if self._bulk_lanes.setdefault(of.name, twin) != twin:
            raise ValueError(f"{of.name!r} already has a bulk lane")
        return twin

    def bulk_lane_of(self, topic: Topic) -> Topic | None:
        """The bulk twin of an interactive topic, if it has one."""
        return self._bulk_lanes.get(topic.name)

    def register(
        self,
        name: str,
        payload: type[BaseModel],
        *,
        topic: Topic,
        description: str,
        classification: DataClassification,
    ) -> EventType:
        if split_type(name) is None or not name.startswith(f"{TYPE_PREFIX}."):
            raise ValueError(f"event type {name!r} must look like {TYPE_PREFIX}.<…>.v<major>")
        if name in self._by_name:
            raise ValueError(f"event type {name!r} is registered twice")
        if payload in self._by_payload:
            raise ValueError(f"payload {payload.__name__} already belongs to another event type")
        if self._topics.get(topic.name) != topic:
            raise ValueError(f"topic {topic.name!r} is not declared in this registry")
        event_type = EventType(name, payload, topic, description, classification)
        self._by_name[name] = event_type
        self._by_payload[payload] = event_type
        return event_type

    def by_name(self, name: str) -> EventType | None:
        return self._by_name.get(name)

    def for_payload(self, payload: type[BaseModel]) -> EventType:
        try:
            return self._by_payload[payload]
        except KeyError:
            raise KeyError(f"{payload.__name__} is not a registered event payload") from None

    @property
    def event_types(self) -> Iterable[EventType]:
        return self._by_name.values()

    @property
    def topics(self) -> Iterable[Topic]:
        return self._topics.values()

    def envelope(
        self,
        payload: BaseModel,
        *,
        source: str,
        subject: str,
        time: datetime | None = None,
    ) -> CloudEvent:
        """Wrap a payload in a CloudEvent carrying the current trace; the subject is the key;
        ``time``: when it was written (now, unless the service's clock says otherwise)."""
        event_type = self.for_payload(type(payload))
        event_id = new_id()
        trace = current_trace()
        return CloudEvent(
            id=event_id,
            source=source,
            type=event_type.name,
            subject=subject,
            time=time or utc_now(),
            data=payload.model_dump(mode="json"),
            correlationid=trace.correlation_id if trace else event_id,
            causationid=trace.causation_id if trace else None,
            partitionkey=subject,
            dataclassification=event_type.classification,
        )

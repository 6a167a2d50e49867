from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from shared.context import traced
from shared.events import CloudEvent, DataClassification, EnvelopeError, EventRegistry, split_type
from shared.messaging.outbox import LANES, lane_of
from tests.support.probe import ProbeRecorded, probe_registry


def test_envelope_round_trips_through_kafka_bytes() -> None:
    registry = probe_registry("probe.topic")
    event = registry.envelope(
        ProbeRecorded(key="case-1", seq=3), source="/upstream/x", subject="case-1"
    )
    again = CloudEvent.from_bytes(event.to_bytes())
    assert again == event
    raw = json.loads(event.to_bytes())
    assert raw["specversion"] == "1.0"
    assert raw["type"] == "uk.upstream.probe.recorded.v1"
    assert raw["partitionkey"] == raw["subject"] == "case-1"
    assert raw["data"] == {"key": "case-1", "seq": 3}
    assert raw["dataclassification"] == "operational"


def test_envelope_carries_the_trace_or_starts_one() -> None:
    registry = probe_registry("probe.topic")
    alone = registry.envelope(ProbeRecorded(key="k", seq=1), source="/s", subject="k")
    assert alone.correlationid == alone.id and alone.causationid is None
    with traced("story-1", "request-9"):
        caused = registry.envelope(ProbeRecorded(key="k", seq=2), source="/s", subject="k")
    assert (caused.correlationid, caused.causationid) == ("story-1", "request-9")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty record value"),
        (b"{nope", "not JSON"),
        (b"[1, 2]", "not an object"),
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "1",
                    "source": "/s",
                    "time": "2026-01-01T00:00:00Z",
                    "data": {},
                }
            ).encode(),
            "type: Field required",
        ),
        (
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": "1",
                    "source": "/s",
                    "type": "unversioned.thing",
                    "time": "2026-01-01T00:00:00Z",
                    "data": {},
                }
            ).encode(),
            "type: String should",
        ),
        (
            json.dumps(
                {
                    "specversion": "0.3",
                    "id": "1",
                    "source": "/s",
                    "type": "a.b.v1",
                    "time": "2026-01-01T00:00:00Z",
                    "data": {},
                }
            ).encode(),
            "specversion",
        ),
        (
            # RFC 3339 asks for the offset; without one the time cannot be compared.
            json.dumps(
                {
                    "id": "1",
                    "source": "/s",
                    "type": "a.b.v1",
                    "time": "2026-01-01T00:00:00",
                    "data": {},
                }
            ).encode(),
            "time: Input should have timezone info",
        ),
    ],
)
def test_unreadable_records_are_refused_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=reason):
        CloudEvent.from_bytes(value)


def test_split_type() -> None:
    assert split_type("uk.upstream.referrals.case.opened.v12") == (
        "uk.upstream.referrals.case.opened",
        12,
    )
    assert split_type("uk.upstream.referrals.case.opened") is None


class Other(BaseModel):
    x: int


def test_registry_refuses_what_would_make_routing_ambiguous() -> None:
    registry = EventRegistry()
    topic = registry.topic("t.v1", "a topic")
    registry.register(
        "uk.upstream.a.b.v1",
        Other,
        topic=topic,
        description="",
        classification=DataClassification.OPERATIONAL,
    )
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(
            "uk.upstream.a.b.v1",
            ProbeRecorded,
            topic=topic,
            description="",
            classification=DataClassification.OPERATIONAL,
        )
    with pytest.raises(ValueError, match="already belongs"):
        registry.register(
            "uk.upstream.a.c.v1",
            Other,
            topic=topic,
            description="",
            classification=DataClassification.OPERATIONAL,
        )
    with pytest.raises(ValueError, match="must look like"):
        registry.register(
            "a.b",
            ProbeRecorded,
            topic=topic,
            description="",
            classification=DataClassification.OPERATIONAL,
        )
    with pytest.raises(ValueError, match="declared differently"):
        registry.topic("t.v1", "another description")
    with pytest.raises(KeyError, match="not a registered event payload"):
        registry.envelope(ProbeRecorded(key="k", seq=1), source="/s", subject="k")


def test_lanes_keep_one_key_together() -> None:
    assert lane_of("case-42") == lane_of("case-42")
    lanes = {lane_of(f"case-{n}") for n in range(1000)}
    assert lanes == set(range(LANES))  # keys spread over every lane

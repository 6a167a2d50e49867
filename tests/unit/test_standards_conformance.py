"""Our envelope and our AsyncAPI document against the public schemas beside the repo.
Skips where ``../shared/standards`` is absent, except in CI, where that fails."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared.events.asyncapi import asyncapi_document
from shared.events.catalogue import CATALOGUE
from tests.support.probe import ProbeRecorded, probe_registry

REPO = Path(__file__).resolve().parents[2]


def test_envelope_validates_against_the_cloudevents_schema(standards: Path) -> None:
    schema = json.loads((standards / "cloudevents" / "cloudevents-1.0.2.schema.json").read_text())
    event = probe_registry("probe.t").envelope(
        ProbeRecorded(key="c", seq=1), source="/upstream/x", subject="c"
    )
    jsonschema.validate(json.loads(event.to_bytes()), schema)


@pytest.mark.parametrize(
    "registry", [CATALOGUE, probe_registry("probe.t")], ids=["catalogue", "probe"]
)
def test_asyncapi_document_validates_against_the_asyncapi_3_schema(
    registry, standards: Path
) -> None:
    schema = json.loads((standards / "asyncapi" / "3.0.0-without-id.json").read_text())
    document = asyncapi_document(registry)
    jsonschema.Draft7Validator(schema).validate(document)


def test_probe_document_describes_each_event_on_its_topic() -> None:
    document = asyncapi_document(probe_registry("probe.t"))
    channel = document["channels"]["probe_t"]
    assert channel["address"] == "probe.t"
    assert set(channel["messages"]) == {"probe_recorded_v1", "probe_flaky_v1"}
    message = document["components"]["messages"]["probe_recorded_v1"]
    assert message["payload"]["properties"]["type"] == {"const": "uk.upstream.probe.recorded.v1"}
    assert document["components"]["schemas"]["ProbeRecorded"]["required"] == ["key", "seq"]


def test_published_asyncapi_document_is_current() -> None:
    published = json.loads((REPO / "docs" / "events" / "asyncapi.json").read_text())
    assert published == asyncapi_document(CATALOGUE), "run `make asyncapi` and commit the result"

"""Bulk lanes: the bulk twin of a topic, its lanes, and what the catalogue and the AsyncAPI
document say of them (the machinery itself is tested on a real broker:
tests/integration/test_bulk_lanes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from shared.events.asyncapi import asyncapi_document
from shared.events.catalogue import CATALOGUE
from shared.messaging.outbox import LANES, Remembered, lane_of
from tests.support.probe import probe_registry


def test_a_bulk_lane_is_the_twin_of_an_interactive_topic() -> None:
    registry = probe_registry("probe.v1")
    topic = next(iter(registry.topics))
    twin = registry.bulk_lane(topic, "probe.bulk.v1", "probe events, bulk work")
    assert twin.bulk and not topic.bulk
    assert (twin.partitions, twin.retention_ms) == (topic.partitions, topic.retention_ms)
    assert registry.bulk_lane_of(topic) == twin
    assert registry.bulk_lane_of(twin) is None
    assert twin in list(registry.topics)  # created and published like any other
    with pytest.raises(ValueError, match="not an interactive topic"):
        registry.bulk_lane(twin, "probe.bulk.bulk.v1", "a lane of a lane")
    with pytest.raises(ValueError, match="already has a bulk lane"):
        registry.bulk_lane(topic, "probe.other-bulk.v1", "a second lane")


def test_bulk_keys_have_lanes_of_their_own() -> None:
    keys = [f"case-{n}" for n in range(1000)]
    assert {lane_of(k, bulk=True) for k in keys} == set(range(LANES, 2 * LANES))
    assert all(lane_of(k, bulk=True) == lane_of(k) + LANES for k in keys)


def test_the_catalogue_has_bulk_lanes_for_flags_and_outreach_cases() -> None:
    topics = {t.name: t for t in CATALOGUE.topics}
    assert (
        CATALOGUE.bulk_lane_of(topics["risk.assessments.v1"]) == topics["risk.assessments.bulk.v1"]
    )
    assert CATALOGUE.bulk_lane_of(topics["referrals.cases.v1"]) == topics["referrals.cases.bulk.v1"]
    assert CATALOGUE.bulk_lane_of(topics["partners.offers.v1"]) is None


def test_the_asyncapi_document_lists_a_bulk_lanes_messages() -> None:
    document = asyncapi_document(CATALOGUE)
    channels = {c["address"]: c for c in document["channels"].values()}
    assert set(channels["referrals.cases.bulk.v1"]["messages"]) == set(
        channels["referrals.cases.v1"]["messages"]
    )
    assert channels["risk.assessments.bulk.v1"]["messages"]


async def test_a_keys_lane_is_asked_once_in_a_process() -> None:
    asked: list[list[str]] = []

    async def bulk_keys(session: Any, keys: Sequence[str]) -> set[str]:
        asked.append(list(keys))
        return {key for key in keys if key.startswith("flag-")}

    ask = Remembered(bulk_keys, size=2)
    assert await ask(None, ["flag-1", "case-1"]) == {"flag-1"}  # type: ignore[arg-type]
    assert await ask(None, ["case-1", "flag-1"]) == {"flag-1"}  # type: ignore[arg-type]
    assert asked == [["flag-1", "case-1"]]
    await ask(None, ["case-2"])  # type: ignore[arg-type]  # past its size: the oldest forgotten
    assert await ask(None, ["flag-1"]) == {"flag-1"}  # type: ignore[arg-type]
    assert asked[-1] == ["flag-1"]


async def test_a_key_learnt_by_its_writer_is_never_asked() -> None:
    asked: list[list[str]] = []

    async def bulk_keys(session: Any, keys: Sequence[str]) -> set[str]:
        asked.append(list(keys))
        return set()

    ask = Remembered(bulk_keys)
    ask.learn("flag-1", bulk=True)
    ask.learn("case-1", bulk=False)
    assert await ask(None, ["flag-1", "case-1"]) == {"flag-1"}  # type: ignore[arg-type]
    assert asked == []

"""The subject access events: the request carries identifiers only, and the topic that carries
the answers declares a short retention, which topic creation and the AsyncAPI document
honour."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events.asyncapi import asyncapi_document
from shared.events.catalogue import CATALOGUE, GOVERNANCE_SUBJECT_ACCESS
from shared.events.envelope import DataClassification
from shared.events.payloads import (
    AccessRead,
    PartnersSubjectAccessContributed,
    RiskSubjectAccessContributed,
    SubjectAccessRequested,
)
from shared.messaging.kafka import _configs, dead_letter_topic, spec_of
from shared.subject_access import in_parts

WEEK_MS = 7 * 24 * 60 * 60 * 1000


def test_the_request_names_no_one_and_the_answers_are_special_category() -> None:
    assert set(SubjectAccessRequested.model_fields) == {
        "request_id",
        "council",
        "case_ids",
        "resident_keys",
        "requested_at",
        "due_by",
    }
    classification = {
        payload: CATALOGUE.for_payload(payload).classification
        for payload in (
            SubjectAccessRequested,
            PartnersSubjectAccessContributed,
            RiskSubjectAccessContributed,
        )
    }
    assert classification == {
        SubjectAccessRequested: DataClassification.PSEUDONYMOUS,
        PartnersSubjectAccessContributed: DataClassification.SPECIAL_CATEGORY,
        RiskSubjectAccessContributed: DataClassification.SPECIAL_CATEGORY,
    }
    assert {CATALOGUE.for_payload(p).topic for p in classification} == {GOVERNANCE_SUBJECT_ACCESS}


def test_the_topic_is_created_and_documented_with_its_retention() -> None:
    spec = spec_of(GOVERNANCE_SUBJECT_ACCESS, partitions=6, replication_factor=3)
    assert spec.retention_ms == WEEK_MS and _configs(spec) == {"retention.ms": str(WEEK_MS)}
    other = spec_of(
        CATALOGUE.for_payload(SubjectAccessRequested).topic, partitions=6, replication_factor=3
    )
    assert other == spec
    cases = next(t for t in CATALOGUE.topics if t.name == "referrals.cases.v1")
    assert _configs(spec_of(cases, partitions=6, replication_factor=1)) == {}
    channels = asyncapi_document(CATALOGUE)["channels"]
    assert channels["governance_subject_access_v1"]["bindings"] == {
        "kafka": {"topicConfiguration": {"retention.ms": WEEK_MS}}
    }
    assert "bindings" not in channels["referrals_cases_v1"]


def test_a_large_answer_goes_in_parts_under_the_budget_keeping_the_order() -> None:
    records = [{"id": str(i), "note": "x" * 100} for i in range(50)]
    reads = [
        AccessRead(
            at=datetime(2026, 12, 1, tzinfo=UTC),
            subject="s",
            organisation="o",
            organisation_kind="council",
            operation=f"op-{i}",
            purpose="p",
        )
        for i in range(5)
    ]
    parts = in_parts({"notes": records, "cases": []}, reads, budget=1_000)
    assert len(parts) > 1
    assert all(set(sections) == {"notes", "cases"} for sections, _ in parts)
    assert [r["id"] for sections, _ in parts for r in sections["notes"]] == [
        str(i) for i in range(50)
    ]
    assert [r.operation for _, part_reads in parts for r in part_reads] == [
        f"op-{i}" for i in range(5)
    ]
    (whole,) = in_parts({"notes": records[:2]}, reads[:1])
    assert len(whole[0]["notes"]) == 2 and len(whole[1]) == 1
    (empty,) = in_parts({"notes": []}, [])
    assert empty == ({"notes": []}, [])


def test_dead_letter_topics_keep_their_records_four_weeks_not_the_brokers_default() -> None:
    spec = spec_of(dead_letter_topic("partners"), partitions=6, replication_factor=1)
    assert spec.name == "partners.dlq"
    assert _configs(spec) == {"retention.ms": str(28 * 24 * 60 * 60 * 1000)}

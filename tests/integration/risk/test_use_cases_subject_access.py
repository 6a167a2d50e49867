"""Subject access in the risk service, on a real migrated PostgreSQL: asked with a resident's
keys and case ids, it answers with the profiles they reach and each one's keys, signals,
cases, assessments, outcomes and handled signals, and its audit rows of reads of them;
nothing of another resident's profile; the answer goes out through the outbox."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from services.risk.service_layer import assessments, outcomes, subject_access
from shared.events.envelope import utc_now
from shared.events.payloads import SubjectAccessRequested
from shared.vocabulary import Need, Outcome
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_outcomes import LONG_AGO, THEN, keys_of, notice, send

pytestmark = pytest.mark.integration


def _request(db: RiskDatabase, keys: list[str], case_ids: list[str], council: str | None = None):
    return SubjectAccessRequested(
        request_id=str(uuid.uuid4()),
        council=council or db.council,
        case_ids=case_ids,
        resident_keys=keys,
        requested_at=utc_now(),
        due_by=date.today() + timedelta(days=30),
    )


async def test_the_answer_holds_what_the_keys_reach_and_nothing_of_another_resident(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    await send(
        db,
        [notice(db, "Amina", "section_8", LONG_AGO), notice(db, "Tomasz", "section_21", LONG_AGO)],
        THEN,
    )
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of(db, "Amina")
        )
    async with db.unit_of_work() as uow:
        await outcomes.record_outcome(
            uow,
            outcomes.OutcomeToRecord(
                case_id, Need.HOUSING, Outcome.SUPPORT_PROVIDED, THEN + timedelta(days=1)
            ),
        )
    async with db.unit_of_work() as uow:  # a caseworker reads why Amina was flagged: audited
        await assessments.explain_resident(uow, keys_of(db, "Amina")[0], council=db.council)
    (tomasz,) = await db.rows(
        "SELECT profile_id FROM profile_keys WHERE key = :k", k=keys_of(db, "Tomasz")[0]
    )

    request = _request(db, keys_of(db, "Amina"), [case_id])
    async with db.unit_of_work() as uow:
        (answer,) = await subject_access.answer_subject_access(uow, request)

    (profile,) = answer.sections["profiles"]
    assert {s["profile_id"] for s in answer.sections["signals"]} == {profile["id"]}
    assert [s["attributes"]["notice_type"] for s in answer.sections["signals"]] == ["section_8"]
    assert [c["case_id"] for c in answer.sections["cases"]] == [case_id]
    assert [o["outcome"] for o in answer.sections["outcomes"]] == ["support_provided"]
    assert answer.sections["assessments"] and answer.sections["keys"]
    assert answer.sections["handled_signals"]
    assert [r.operation for r in answer.reads] == ["explain_resident"]
    assert answer.reads[0].resident_ids == [profile["id"]]
    assert str(tomasz["profile_id"]) not in answer.model_dump_json()
    (sent,) = [
        e
        for e in await db.events("risk.subject_access.contributed")
        if e["request_id"] == request.request_id
    ]
    assert sent["sections"]["profiles"][0]["id"] == profile["id"]


async def test_another_councils_request_reaches_nothing(risk_database: RiskDatabase) -> None:
    db = risk_database
    await send(db, [notice(db, "Amina", "section_8", LONG_AGO)], THEN)
    request = _request(db, keys_of(db, "Amina"), [], council="E09000012")
    async with db.unit_of_work() as uow:
        (answer,) = await subject_access.answer_subject_access(uow, request)
    assert all(records == [] for records in answer.sections.values()) and answer.reads == []

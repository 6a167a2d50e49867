"""Subject access in the referrals service, on a real migrated PostgreSQL (no broker, no
HTTP): the request writes the service's own part and announces itself with case ids and keys
only; the others' answers are stored once; the request is complete when all three have
answered, overdue past its due date; another council's request is not found; every read is
audited."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from services.referrals.domain.subject_access import RequestStatus
from services.referrals.service_layer import cases, intake, subject_access
from shared.errors import NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import (
    AccessRead,
    PartnersSubjectAccessContributed,
    RiskSubjectAccessContributed,
    SubjectAccessContributed,
)
from shared.messaging.outbox import FORGET_KEYS
from shared.messaging.sealing import digest_of
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, ig, new_referral

pytestmark = pytest.mark.integration


async def _refer(db: ReferralsDatabase, **facts: object) -> str:
    caller = db.caller()
    referral = new_referral(resident=replace(AMINA, **facts))
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, caller, referral)
    assert receipt.case_id is not None
    async with db.unit_of_work() as uow:
        await cases.add_note(uow, caller, receipt.case_id, f"Spoke to {facts or 'Amina'}.")
    return receipt.case_id


async def _resident_of(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT resident_id FROM cases WHERE id = :c", c=case_id)
    return str(row["resident_id"])


def _answer(
    cls: type[SubjectAccessContributed], request_id: str, council: str, **sections: list
) -> SubjectAccessContributed:
    return cls(
        request_id=request_id,
        council=council,
        sections=sections,
        reads=[
            AccessRead(
                at=utc_now(),
                subject="someone",
                organisation="a-partner",
                organisation_kind="vcs",
                operation="offer_packet",
                purpose="partner work",
            )
        ],
        contributed_at=utc_now(),
    )


async def test_a_request_writes_its_own_part_and_asks_the_others_with_ids_only(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db)
    other_case = await _refer(db, given_name="Zainab", family_name="Begum", phone="07700 900999")
    resident = await _resident_of(db, case_id)

    async with db.unit_of_work() as uow:
        request = await subject_access.request_subject_access(uow, ig(db.council), resident)

    assert request.status is RequestStatus.IN_PROGRESS
    assert request.contributed == ("referrals",) and request.pending == ("partners", "risk")
    assert request.due_by > request.requested_at.date() + timedelta(days=27)
    (announced,) = await db.events("referrals.subject_access.requested")
    assert announced["case_ids"] == [case_id] and len(announced["resident_keys"]) >= 1
    assert "Amina" not in str(announced) and "07700" not in str(announced)

    async with db.unit_of_work() as uow:
        export = await subject_access.subject_access_export(uow, ig(db.council), request.id)
    (own,) = export.contributions
    assert [r["id"] for r in own.sections["residents"]] == [resident]
    assert [c["id"] for c in own.sections["cases"]] == [case_id]
    assert {n["text"] for n in own.sections["notes"]} == {"Spoke to Amina."}
    assert len(own.sections["referrals"]) == 1 and len(own.sections["consents"]) == 1
    assert own.sections["timeline"] and own.sections["needs"]
    text = str(export)
    assert other_case not in text and "Zainab" not in text
    # The request itself is in the trail it exported; the export's read is recorded too.
    assert "subject_access_request" in {r["operation"] for r in own.reads}
    operations = [
        r["operation"]
        for r in await db.rows(
            "SELECT operation FROM audit_log WHERE resident_ids ? :r ORDER BY id", r=resident
        )
    ]
    assert operations[-2:] == ["subject_access_request", "subject_access_export"]


async def test_answers_are_stored_once_and_complete_the_request(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    resident = await _resident_of(db, await _refer(db))
    async with db.unit_of_work() as uow:
        request = await subject_access.request_subject_access(uow, ig(db.council), resident)

    partners = _answer(
        PartnersSubjectAccessContributed, request.id, db.council, offers=[{"id": "o-1"}]
    )
    async with db.applying(partners, subject=request.id) as uow:
        assert await subject_access.record_contribution(uow, "partners", partners)
    replayed = _answer(
        PartnersSubjectAccessContributed, request.id, db.council, offers=[{"id": "o-2"}]
    )
    async with db.applying(replayed, subject=request.id) as uow:
        assert not await subject_access.record_contribution(uow, "partners", replayed)
    async with db.unit_of_work() as uow:
        halfway = await subject_access.request_status(uow, ig(db.council), request.id)
    assert halfway.pending == ("risk",) and halfway.completed_at is None

    risk = _answer(RiskSubjectAccessContributed, request.id, db.council, signals=[])
    async with db.applying(risk, subject=request.id) as uow:
        assert await subject_access.record_contribution(uow, "risk", risk)
    async with db.unit_of_work() as uow:
        export = await subject_access.subject_access_export(uow, ig(db.council), request.id)
    assert export.request.status is RequestStatus.COMPLETE and export.request.pending == ()
    assert export.request.completed_at is not None
    by_service = {c.service: c for c in export.contributions}
    assert by_service["partners"].sections == {"offers": [{"id": "o-1"}]}  # the first answer
    assert by_service["risk"].reads[0]["operation"] == "offer_packet"
    assert await db.count("subject_access_contributions") == 3


async def test_past_its_due_date_an_incomplete_request_is_overdue(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    resident = await _resident_of(db, await _refer(db))
    async with db.unit_of_work() as uow:
        request = await subject_access.request_subject_access(uow, ig(db.council), resident)
    async with db.unit_of_work() as uow:
        uow.clock = lambda: utc_now() + timedelta(days=40)
        later = await subject_access.request_status(uow, ig(db.council), request.id)
    assert later.status is RequestStatus.OVERDUE and later.pending == ("partners", "risk")


async def test_another_councils_resident_and_request_are_not_found(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    resident = await _resident_of(db, await _refer(db))
    async with db.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await subject_access.request_subject_access(uow, ig(db.other_council), resident)
    async with db.unit_of_work() as uow:
        request = await subject_access.request_subject_access(uow, ig(db.council), resident)
    for read in (subject_access.request_status, subject_access.subject_access_export):
        async with db.unit_of_work() as uow:
            with pytest.raises(NotFound):
                await read(uow, ig(db.other_council), request.id)
    assert await db.count("subject_access_requests") == 1
    assert len(await db.events("referrals.subject_access.requested")) == 1


async def test_an_answer_in_parts_counts_once_every_part_is_in(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    resident = await _resident_of(db, await _refer(db))
    async with db.unit_of_work() as uow:
        request = await subject_access.request_subject_access(uow, ig(db.council), resident)
    first, second = (
        _answer(
            RiskSubjectAccessContributed, request.id, db.council, signals=[{"id": s}]
        ).model_copy(update={"part": part, "parts": 2})
        for part, s in ((1, "s-1"), (2, "s-2"))
    )
    async with db.applying(second, subject=request.id) as uow:
        assert await subject_access.record_contribution(uow, "risk", second)
    async with db.unit_of_work() as uow:
        halfway = await subject_access.subject_access_export(uow, ig(db.council), request.id)
    assert "risk" in halfway.request.pending
    assert [c.service for c in halfway.contributions] == ["referrals"]
    async with db.applying(first, subject=request.id) as uow:
        assert await subject_access.record_contribution(uow, "risk", first)
    async with db.unit_of_work() as uow:
        export = await subject_access.subject_access_export(uow, ig(db.council), request.id)
    assert export.request.pending == ("partners",)
    risk = next(c for c in export.contributions if c.service == "risk")
    assert [s["id"] for s in risk.sections["signals"]] == ["s-1", "s-2"]
    assert len(risk.reads) == 2


async def test_an_answer_to_a_request_no_longer_held_is_shredded_where_it_lies(
    referrals_database: ReferralsDatabase,
) -> None:
    """Risk answered a request after the resident's erasure reached referrals (the request
    went with her) but before it reached risk: the answer is not stored, and its request's
    key is forgotten by the relay, so the answer on the topic opens no more."""
    db = referrals_database
    request_id = str(uuid.uuid4())
    late = _answer(RiskSubjectAccessContributed, request_id, db.council, signals=[{"id": "s"}])
    async with db.applying(late, subject=request_id) as uow:
        assert not await subject_access.record_contribution(uow, "risk", late)
    forgettings = await db.rows(
        "SELECT envelope FROM outbox WHERE topic = :t AND message_key = :k",
        t=FORGET_KEYS,
        k=request_id,
    )
    assert [row["envelope"]["digests"] for row in forgettings] == [[digest_of(request_id)]]
    assert await db.count("subject_access_contributions", "request_id = :r", r=request_id) == 0


async def test_answers_arriving_together_complete_the_request(
    referrals_database: ReferralsDatabase,
) -> None:
    """Partners' and risk's answers committed at once (two consumers, two transactions):
    the second to take the request's lock sees the first, and completes it."""
    db = referrals_database
    resident = await _resident_of(db, await _refer(db))
    for _ in range(3):
        async with db.unit_of_work() as uow:
            request = await subject_access.request_subject_access(uow, ig(db.council), resident)

        async def answer(
            cls: type[SubjectAccessContributed], service: str, request_id: str = request.id
        ) -> bool:
            contribution = _answer(cls, request_id, db.council)
            async with db.applying(contribution, subject=request_id) as uow:
                return await subject_access.record_contribution(uow, service, contribution)

        assert await asyncio.gather(
            answer(PartnersSubjectAccessContributed, "partners"),
            answer(RiskSubjectAccessContributed, "risk"),
        ) == [True, True]
        async with db.unit_of_work() as uow:
            status = await subject_access.request_status(uow, ig(db.council), request.id)
        assert status.status is RequestStatus.COMPLETE and status.completed_at is not None

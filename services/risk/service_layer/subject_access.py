"""Subject access (UK GDPR Article 15): the risk service answers a council's request with
what it holds about the resident. It holds no direct identifier: the request carries the
resident's pseudonymous keys and case ids, which reach the resident's profiles; the answer
is those profiles with their keys, signals, cases, assessments, outcomes and handled
signals, and the audit trail of reads of them. Nothing is stored here: the answer is an
event to the referrals service, which keeps it against the request."""

from __future__ import annotations

from services.risk.adapters import subject_access as db
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.events.payloads import RiskSubjectAccessContributed, SubjectAccessRequested
from shared.subject_access import in_parts, records


async def answer_subject_access(
    uow: RiskUnitOfWork, request: SubjectAccessRequested
) -> list[RiskSubjectAccessContributed]:
    """The answer, in as many parts as its size needs (usually one), through the outbox."""
    async with uow.transaction() as session:
        profiles = await db.profile_ids(
            session, request.council, request.resident_keys, request.case_ids
        )
        held = await db.held(session, request.council, profiles, request.case_ids)
        case_ids = sorted({str(row["case_id"]) for row in held["cases"]})
        reads = await db.reads(session, profiles, case_ids)
        parts = in_parts({kind: records(rows) for kind, rows in held.items()}, reads)
        answer = [
            RiskSubjectAccessContributed(
                request_id=request.request_id,
                council=request.council,
                sections=part_sections,
                reads=part_reads,
                contributed_at=uow.now(),
                part=number,
                parts=len(parts),
            )
            for number, (part_sections, part_reads) in enumerate(parts, start=1)
        ]
        for part in answer:
            await uow.outbox.add(session, part, subject=request.request_id)
    return answer

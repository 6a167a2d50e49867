"""Subject access (UK GDPR Article 15): the partners service answers a council's request
with what it holds about the resident's cases. It knows a resident only by case, so the
request names the cases (``SubjectAccessRequested.case_ids``); the answer is the packets
held for them, the offers made (and to which partner and service), the deliveries that
told partners of them, and its audit trail of reads of those cases. Nothing is stored here:
the answer is an event to the referrals service, which keeps it against the request."""

from __future__ import annotations

from services.partners.adapters import subject_access as db
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.events.payloads import PartnersSubjectAccessContributed, SubjectAccessRequested
from shared.subject_access import in_parts, records


async def answer_subject_access(
    uow: PartnersUnitOfWork, request: SubjectAccessRequested
) -> list[PartnersSubjectAccessContributed]:
    """The answer, in as many parts as its size needs (usually one), through the outbox."""
    async with uow.transaction() as session:
        held = await db.held(session, request.council, request.case_ids)
        held_cases = sorted({str(row["case_id"]) for row in held["packets"]})
        reads = await db.reads(session, held_cases)
        parts = in_parts({kind: records(rows) for kind, rows in held.items()}, reads)
        answer = [
            PartnersSubjectAccessContributed(
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

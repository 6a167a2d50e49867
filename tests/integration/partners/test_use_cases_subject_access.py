"""Subject access in the partners service, on a real migrated PostgreSQL: asked for a
resident's cases, it answers with the packets it holds for them, the offers made (and to
whom), the deliveries, and its audit rows of reads of those cases; nothing of another case
or another council's case; the answer goes out through the outbox."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.partners.service_layer import placement, subject_access
from services.partners.service_layer.placement import CaseToRoute
from shared.events.envelope import utc_now
from shared.events.payloads import SubjectAccessRequested
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.integration.partners.conftest import PartnersApi, work_on

pytestmark = pytest.mark.integration


async def _route(partners: PartnersApi, first_name: str) -> str:
    case_id = str(uuid.uuid4())
    case = CaseToRoute(
        case_id=case_id,
        council=partners.council,
        packet={
            "first_name": first_name,
            "contact": {"method": "phone", "value": "07700 900123"},
            "needs": ["food"],
            "council": partners.council,
            "urgency": "high",
            "summary": f"{first_name} needs food.",
        },
        lawful_basis=LawfulBasis.CONSENT,
        consent_kinds=[PartnerKind.ANY_VOLUNTARY],
        ready_at=utc_now(),
    )
    async with work_on(partners.engine, partners.settings) as uow:
        await placement.route_case(uow, case)
    return case_id


def _request(partners: PartnersApi, case_ids: list[str], council: str | None = None):
    return SubjectAccessRequested(
        request_id=str(uuid.uuid4()),
        council=council or partners.council,
        case_ids=case_ids,
        resident_keys=["k1"],
        requested_at=utc_now(),
        due_by=date(2027, 1, 4),
    )


async def test_the_answer_holds_the_cases_packets_offers_and_reads_and_nothing_else(
    partners: PartnersApi,
) -> None:
    await partners.add_partner("pantry", capacity=5)
    amina, zainab = await _route(partners, "Amina"), await _route(partners, "Zainab")
    offers = (
        await partners.client.get("/v1/inbox/offers", headers=partners.partner("pantry"))
    ).json()
    amina_offer = next(o for o in offers if o["case_id"] == amina)
    read = await partners.client.get(
        f"/v1/inbox/offers/{amina_offer['id']}", headers=partners.partner("pantry")
    )
    assert read.status_code == 200, read.text

    request = _request(partners, [amina])
    async with work_on(partners.engine, partners.settings) as uow:
        (answer,) = await subject_access.answer_subject_access(uow, request)

    (packet,) = answer.sections["packets"]
    assert packet["case_id"] == amina and packet["packet"]["first_name"] == "Amina"
    (offer,) = answer.sections["offers"]
    assert offer["id"] == amina_offer["id"] and offer["partner_name"] == "pantry"
    assert offer["service_name"] == "pantry service"
    assert all(r.case_ids == [amina] for r in answer.reads)
    # The inbox list and the offer read: both named this case (the list, Zainab's too, but
    # only Amina's case is told here).
    assert [r.operation for r in answer.reads] == ["list_offers", "get_offer"]
    assert all(r.organisation == partners.organizations["pantry"] for r in answer.reads)
    text = answer.model_dump_json()
    assert zainab not in text and "Zainab" not in text
    (sent,) = [
        e
        for e in await partners.events("partners.subject_access.contributed")
        if e["request_id"] == request.request_id
    ]
    assert sent["sections"]["offers"][0]["id"] == amina_offer["id"]


async def test_another_councils_request_for_the_case_gets_nothing(partners: PartnersApi) -> None:
    await partners.add_partner("pantry", capacity=5)
    amina = await _route(partners, "Amina")
    request = _request(partners, [amina], council="E09000012")
    async with work_on(partners.engine, partners.settings) as uow:
        (answer,) = await subject_access.answer_subject_access(uow, request)
    assert all(records == [] for records in answer.sections.values())
    assert answer.reads == []

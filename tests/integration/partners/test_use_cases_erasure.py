"""Erasure and retention in the partners service, on a real migrated PostgreSQL: an erasure
request deletes the route requests (and packets), offers and deliveries of the resident's
cases and the outbox rows naming them, keeps the reads under tombstone hashes, and confirms
with counts only; a replayed ready-for-routing of an erased case routes nothing; ended
offers long past go in the retention sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.partners.handlers import EVENT_HANDLERS
from services.partners.service_layer import erasure, retention
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.db import session_factory
from shared.erasure import tombstone
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.events.payloads import (
    CaseReadyForRouting,
    ErasureRequested,
    PartnersErasureConfirmed,
    RoutingPacket,
)
from shared.messaging.outbox import Outbox
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.integration.partners.conftest import PartnersApi, work_on
from tests.integration.partners.test_use_cases_subject_access import _route

pytestmark = pytest.mark.integration


async def _count(partners: PartnersApi, query: str, **params: object) -> int:
    async with partners.engine.connect() as connection:
        return int(await connection.scalar(text(query), params) or 0)


async def test_erasure_deletes_the_cases_records_and_a_replay_routes_nothing(
    partners: PartnersApi,
) -> None:
    await partners.add_partner("pantry", capacity=5)
    amina, zainab = await _route(partners, "Amina"), await _route(partners, "Zainab")
    offers = (
        await partners.client.get("/v1/inbox/offers", headers=partners.partner("pantry"))
    ).json()
    offer = next(o for o in offers if o["case_id"] == amina)
    read = await partners.client.get(
        f"/v1/inbox/offers/{offer['id']}", headers=partners.partner("pantry")
    )
    assert read.status_code == 200
    request = ErasureRequested(
        request_id=str(uuid.uuid4()),
        council=partners.council,
        case_ids=[amina],
        resident_keys=["k1"],
        ground="objection",
        requested_at=utc_now(),
    )
    async with work_on(partners.engine, partners.settings) as uow:
        confirmed = await erasure.erase(uow, request)
    assert confirmed.erased["packets"] == 1 and confirmed.erased["offers"] == 1
    assert confirmed.erased["outbox_events"] >= 1

    for table in ("route_requests", "offers", "outbox", "audit_log", "deliveries"):
        assert (
            await _count(
                partners, f"SELECT count(*) FROM {table} t WHERE t::text LIKE :a", a=f"%{amina}%"
            )
            == 0
        ), table
        assert (
            await _count(
                partners,
                f"SELECT count(*) FROM {table} t WHERE t::text LIKE :a",
                a=f"%{offer['id']}%",
            )
            == 0
        ), table
    assert (
        await _count(partners, "SELECT count(*) FROM route_requests WHERE case_id = :z", z=zainab)
        == 1
    )
    secret = partners.settings.tombstone_secret
    assert (
        await _count(
            partners,
            "SELECT count(*) FROM audit_log WHERE case_ids ? :h",
            h=tombstone(secret.get_secret_value(), amina),
        )
        >= 1
    )
    # Confirmed with counts only (the outbox holds nothing naming her: above).
    assert (
        await _count(
            partners,
            "SELECT count(*) FROM outbox WHERE message_key = :r AND event_type = :t",
            r=request.request_id,
            t=CATALOGUE.for_payload(PartnersErasureConfirmed).name,
        )
        == 1
    )

    # Her case, ready for routing again (an old event replayed): routed to no one.
    ready = CaseReadyForRouting(
        case_id=amina,
        council=partners.council,
        packet=RoutingPacket.model_validate(
            {
                "first_name": "Amina",
                "contact": {"method": "phone", "value": "07700 900123"},
                "needs": ["food"],
                "council": partners.council,
                "urgency": "high",
                "summary": "Amina needs food.",
            }
        ),
        lawful_basis=LawfulBasis.CONSENT,
        consent_partner_kinds=[PartnerKind.ANY_VOLUNTARY],
    )
    event = CATALOGUE.envelope(ready, source="/upstream/referrals", subject=amina)
    async with session_factory(partners.engine)() as session, session.begin():
        uow = PartnersUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=partners.settings.source),
            settings=partners.settings,
            event=event,
        )
        await dict(EVENT_HANDLERS)[CaseReadyForRouting](ready, uow)
    assert (
        await _count(partners, "SELECT count(*) FROM route_requests WHERE case_id = :a", a=amina)
        == 0
    )


async def test_retention_deletes_offers_that_ended_long_ago_once_no_longer_routed(
    partners: PartnersApi,
) -> None:
    await partners.add_partner("pantry", capacity=5)
    ended, routing = await _route(partners, "Amina"), await _route(partners, "Zainab")
    long_ago = utc_now() - timedelta(days=partners.settings.retention_ended_offer_days + 1)
    async with partners.engine.begin() as connection:
        await connection.execute(
            text("UPDATE offers SET status = 'declined', updated_at = :t"), {"t": long_ago}
        )
        await connection.execute(
            text("UPDATE route_requests SET status = 'closed' WHERE case_id = :c"), {"c": ended}
        )
        # the other need, declined, is being routed again
        await connection.execute(
            text("UPDATE route_requests SET status = 'open' WHERE case_id = :c"), {"c": routing}
        )
    async with work_on(partners.engine, partners.settings) as uow:
        assert await retention.sweep_retention(uow) == 1
    assert await _count(partners, "SELECT count(*) FROM offers WHERE case_id = :c", c=ended) == 0
    # the other need is still being routed: its declined offer stays (not offered twice)
    assert await _count(partners, "SELECT count(*) FROM offers WHERE case_id = :c", c=routing) == 1


async def test_retention_deletes_sign_in_links_and_web_sessions_long_expired(
    partners: PartnersApi,
) -> None:
    """Each names a member of a partner's staff by e-mail address, as does each sign-in
    e-mail's row: kept ``retention_sign_in_days`` after it expired (to look into a
    sign-in), then deleted; an e-mail still waiting to go is kept."""
    now = utc_now()
    kept_for = timedelta(days=partners.settings.retention_sign_in_days)
    organization = str(uuid.uuid4())
    expiries = {
        "long expired": now - kept_for - timedelta(hours=1),
        "expired lately": now - kept_for + timedelta(hours=1),
        "live": now + timedelta(minutes=10),
    }
    async with partners.engine.begin() as connection:
        for token, expires_at in expiries.items():
            values = {"t": token, "o": organization, "at": expires_at}
            await connection.execute(
                text(
                    "INSERT INTO sign_in_links (token_hash, email, organization_id, expires_at) "
                    "VALUES (:t, 'worker@pantry.example', :o, :at)"
                ),
                values,
            )
            await connection.execute(
                text(
                    "INSERT INTO web_sessions "
                    "(token_hash, organization_id, email, csrf_token, expires_at) "
                    "VALUES (:t, :o, 'worker@pantry.example', 'csrf', :at)"
                ),
                values,
            )
        # Its sign-in e-mail, sent (the link erased from its body, the address kept) at the
        # link's expiry, near enough; and one long waiting to go (the mail server down).
        for token, expires_at in {**expiries, "waiting": expiries["long expired"]}.items():
            await connection.execute(
                text(
                    "INSERT INTO email_deliveries (id, organization_id, kind, to_address, "
                    "subject, body, status, attempts, next_attempt_at, created_at) "
                    "VALUES (:id, :o, 'sign-in', 'worker@pantry.example', :t, '', :status, 1, "
                    ":at, :at)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "o": organization,
                    "t": token,
                    "status": "pending" if token == "waiting" else "delivered",
                    "at": expires_at,
                },
            )
    async with work_on(partners.engine, partners.settings) as uow:
        assert await retention.sweep_retention(uow) == 3
        assert await retention.sweep_retention(uow) == 0
    for table in ("sign_in_links", "web_sessions"):
        left = await _tokens(partners, table)
        assert left == ["expired lately", "live"], table
    async with partners.engine.connect() as connection:
        mails = await connection.execute(text("SELECT subject FROM email_deliveries ORDER BY 1"))
        assert list(mails.scalars()) == ["expired lately", "live", "waiting"]


async def _tokens(partners: PartnersApi, table: str) -> list[str]:
    async with partners.engine.connect() as connection:
        found = await connection.execute(text(f"SELECT token_hash FROM {table} ORDER BY 1"))
        return list(found.scalars())

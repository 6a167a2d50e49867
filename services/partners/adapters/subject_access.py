"""What the partners service holds about a resident's cases, for a subject access request
(``service_layer/subject_access.py``): the packets held, the offers made and to whom, the
webhook and email deliveries that told partners of them, and its audit rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import (
    audit_log,
    deliveries,
    email_deliveries,
    offers,
    organizations,
    requests,
    services,
)
from shared.db import fetch_all
from shared.events.payloads import AccessRead
from shared.subject_access import reads_about


async def held(
    session: AsyncSession, council: str, case_ids: Sequence[str]
) -> dict[str, Sequence[RowMapping]]:
    """By kind, every record about the cases of ``council`` named."""
    packets = await fetch_all(
        session,
        select(requests)
        .where(requests.c.case_id.in_(case_ids), requests.c.council == council)
        .order_by(requests.c.created_at, requests.c.id),
    )
    held_cases = sorted({str(row["case_id"]) for row in packets})
    made = await fetch_all(
        session,
        select(
            offers,
            organizations.c.name.label("partner_name"),
            services.c.name.label("service_name"),
        )
        .join(services, services.c.id == offers.c.service_id)
        .join(organizations, organizations.c.id == offers.c.organization_id)
        .where(offers.c.case_id.in_(held_cases))
        .order_by(offers.c.created_at, offers.c.id),
    )
    offer_ids = [row["id"] for row in made]
    return {
        "packets": packets,
        "offers": made,
        "webhook_deliveries": await fetch_all(
            session,
            select(deliveries)
            .where(deliveries.c.offer_id.in_(offer_ids))
            .order_by(deliveries.c.created_at, deliveries.c.id),
        ),
        "email_deliveries": await fetch_all(
            session,
            select(
                email_deliveries.c.id,
                email_deliveries.c.offer_id,
                email_deliveries.c.organization_id,
                email_deliveries.c.kind,
                email_deliveries.c.to_address,
                email_deliveries.c.subject,
                email_deliveries.c.status,
                email_deliveries.c.created_at,
                email_deliveries.c.delivered_at,
            )
            .where(email_deliveries.c.offer_id.in_(offer_ids))
            .order_by(email_deliveries.c.created_at, email_deliveries.c.id),
        ),
    }


async def reads(session: AsyncSession, case_ids: Sequence[str]) -> list[AccessRead]:
    return await reads_about(session, audit_log, case_ids=case_ids)

"""A partners database, its app and a real SMTP server (aiosmtpd) for the web inbox tests:
partners with registered addresses, offers routed to them with the use cases, emails sent
through SMTP by the delivery sweep and read back from the server's folder."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import free_port
from devtools.mail import MailFolderServer
from services.partners.service_layer import directory, notifications, placement, web_access
from services.partners.service_layer.agreements import Manager
from services.partners.service_layer.directory import (
    AgreementTerms,
    Editor,
    NewOrganization,
    ServiceDetails,
)
from services.partners.service_layer.placement import CaseToRoute
from services.partners.settings import PartnersSettings
from shared.events.envelope import utc_now
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.integration.partners.conftest import work_on

OPERATOR = Editor("operator", is_operator=True)
AGREEMENTS_BY = Manager("operator-person", "operator", is_operator=True)
COUNCIL = "E09000025"
# The resident's details in every packet: no email may carry any of them.
RESIDENT = {
    "first_name": "Zebedee",
    "contact": {"method": "phone", "value": "07700 900461"},
    "postcode_district": "E15",
    "age_years": 67,
    "summary": "Zebedee has rent arrears at 14 Quarry Lane and no food in the flat.",
}


def mail_settings(database_url: str, smtp_port: int, **changes: Any) -> PartnersSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_tls": "none",
        "public_base_url": "https://partners",
        **changes,
    }
    return PartnersSettings(**values)


def start_mail_server(folder: Path) -> MailFolderServer:
    server = MailFolderServer(folder, port=free_port())
    server.start()
    return server


@dataclass
class WebWorld:
    engine: AsyncEngine
    settings: PartnersSettings
    mail: MailFolderServer
    organizations: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)

    def work(self) -> Any:
        return work_on(self.engine, self.settings)

    async def add_partner(self, name: str, email: str, *, need: str = "food") -> str:
        async with self.work() as uow:
            organization_id = await directory.add_organization(
                uow,
                NewOrganization(
                    name=name,
                    description=f"{name}, a local charity",
                    kind=PartnerKind.FOOD,
                    agreements=[
                        AgreementTerms(
                            council=COUNCIL,
                            reference=f"DSA {name}",
                            needs=[need],
                            lawful_bases=[LawfulBasis.CONSENT],
                            starts_on=date(2020, 1, 1),
                        )
                    ],
                ),
                by=AGREEMENTS_BY,
            )
        async with self.work() as uow:
            details = ServiceDetails.model_validate(
                {
                    "organization_id": organization_id,
                    "name": f"{name} service",
                    "description": "what it offers",
                    "needs": [need],
                    "councils": [COUNCIL],
                    "capacity": 5,
                }
            )
            self.services[name] = await directory.add_service(uow, OPERATOR, details)
        async with self.work() as uow:
            await web_access.register_addresses(uow, organization_id, [email])
        self.organizations[name] = organization_id
        return organization_id

    async def route(self, need: str = "food", urgency: str = "high") -> str:
        """A case routed; the id of the offer made."""
        case_id = str(uuid.uuid4())
        async with self.work() as uow:
            await placement.route_case(
                uow,
                CaseToRoute(
                    case_id=case_id,
                    council=COUNCIL,
                    packet={**RESIDENT, "needs": [need], "council": COUNCIL, "urgency": urgency},
                    lawful_basis=LawfulBasis.CONSENT,
                    consent_kinds=[PartnerKind.ANY_VOLUNTARY],
                    ready_at=utc_now(),
                ),
            )
        rows = await self.rows("SELECT id FROM offers WHERE case_id = :c", c=case_id)
        return str(rows[0]["id"])

    async def deliver(self) -> int:
        async with self.work() as uow:
            return await notifications.deliver_due_emails(uow)

    async def rows(self, sql: str, **params: object) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).mappings().all())

    async def execute(self, sql: str, **params: object) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(sql), params)

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mail.messages() if m["To"] == address]

    async def sign_in_link(self, address: str) -> str:
        """The sign-in link most recently emailed to ``address`` (sent by the sweep)."""
        await self.deliver()
        for message in reversed(self.mails_to(address)):
            body = message.get_body(("plain",))
            assert body is not None
            found = re.search(r"https?://\S+/inbox/sign-in/\S+", body.get_content())
            if found:
                return found.group(0)
        raise AssertionError(f"no sign-in link was emailed to {address}")

"""The demo councils' details for their transparency records (ATRS), so that a development
stack (``make run``, ``make demo``) serves a complete record for each:
``GET /v1/transparency/E09000025`` (Newham) and ``…/E09000012`` (Hackney).

A borough does the same for itself with ``PUT /v1/councils/{council}/transparency`` (an
operator or the council's information-governance team), with its own words: these are
examples, in the shape the record needs. Set only where a council has no details yet, so a
borough's own edits on a reused stack stay."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.risk.adapters import councils as stored_councils
from services.risk.domain.atrs import CouncilDetails
from shared.db import session_factory
from shared.events.envelope import utc_now

NEWHAM, HACKNEY = "E09000025", "E09000012"
AUTHOR = "development stack"


def _details(name: str, slug: str, mailbox: str) -> CouncilDetails:
    return CouncilDetails(
        organisation_name=name,
        organisation_type="Local authority (London borough)",
        function="Housing; Benefits and welfare; Community support",
        region="London",
        phase="Beta/Pilot",
        tags=["homelessness prevention", "cost of living"],
        website_url=f"https://www.{slug}.gov.uk/upstream",
        contact_email=mailbox,
        organisation_or_department=name,
        team="Early Help and Prevention",
        senior_responsible_owner="Director of Housing Needs and Prevention",
        external_supplier_involvement=(
            "No: the council runs Upstream, open-source software, on its own infrastructure."
        ),
        benefit=(
            "Residents heading towards a crisis (eviction, disconnection, no food) are offered "
            "help weeks earlier than when they present in crisis; fewer households reach "
            "temporary accommodation; partners receive referrals with consent and the "
            "information they need."
        ),
        previous_process=(
            "Referrals by email and spreadsheet; no shared view of arrears, sanctions and "
            "notices; residents were usually first seen at the point of crisis."
        ),
        alternatives_considered=(
            "A predictive (machine-learning) model was rejected: it could not be explained to "
            "a resident and would need years of outcomes to check for bias. Manual review of "
            "every arrears report was rejected as too slow for the numbers involved. "
            "Published, simple rules were chosen because each reason can be read to a resident."
        ),
        frequency_and_scale_of_usage=(
            "Signal files arrive weekly from revenues, housing and benefits; caseworkers and "
            "partners refer daily. In the pilot: about 20,000 households' signals a month and "
            "a few hundred referrals."
        ),
        required_training=(
            "Caseworkers complete the council's data-protection training and a half-day "
            "session on reading assessments, talking to residents about them and recording "
            "consent; data teams are trained on the signal file format."
        ),
        appeals_and_review=(
            "A resident can ask why they were contacted and have the reasons read to them, "
            "ask for a review by a team manager, object to the processing, and complain to "
            "the council's Data Protection Officer and then the Information Commissioner's "
            "Office. Nothing is decided about a resident by the rules alone."
        ),
        data_quantities=(
            "Signals on about 20,000 households a month (council tax, rent, benefits, "
            "notices); each signal is kept while current (60 to 365 days by type)."
        ),
        source_data_url=f"https://www.{slug}.gov.uk/privacy/upstream",
        data_sharing_agreements=(
            f"{name} voluntary-sector data-sharing agreement 2026 (with each partner that "
            "receives referrals); internal information-sharing protocol between revenues, "
            "housing and early help."
        ),
        impact_assessment=(
            "Data protection impact assessment (UK GDPR Article 35), approved by the Data "
            "Protection Officer, reviewed yearly; equality impact assessment completed for "
            "the pilot."
        ),
    )


DEMO_COUNCILS = {
    NEWHAM: _details("London Borough of Newham", "newham", "upstream@newham.gov.uk"),
    HACKNEY: _details("London Borough of Hackney", "hackney", "upstream@hackney.gov.uk"),
}


async def describe_demo_councils(engine: AsyncEngine) -> int:
    """Set each demo council's details unless it has some; how many were set."""
    added = 0
    async with session_factory(engine)() as session, session.begin():
        for council, details in DEMO_COUNCILS.items():
            added += await stored_councils.put_unless_held(
                session, council, details.model_dump(mode="json"), by=AUTHOR, at=utc_now()
            )
    return added

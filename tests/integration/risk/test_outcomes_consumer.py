"""The loop closes through the broker: the risk consumer takes a partner's outcome for a
flagged resident's outreach case, records it once (however often it is delivered), and the
why-API says which signals the help handled and which are new."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from services.risk.service_layer import assessments
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.events.payloads import OutcomeRecorded
from shared.identity import resident_keys
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import Outbox
from shared.vocabulary import Need, Outcome
from tests.integration.messaging_helpers import wait_for
from tests.integration.risk.conftest import RiskApi
from tests.integration.risk.test_signals_and_rules import HEADER, csv_row, one_off_family_name
from tests.support.services import Publisher

pytestmark = pytest.mark.integration

OF_THIS_CASE = "outcome_id IN (SELECT id FROM outcomes WHERE case_id = :c)"
EARLIER = (date.today() - timedelta(days=20)).isoformat()
LATER = (date.today() - timedelta(days=2)).isoformat()


async def test_an_outcome_event_closes_the_loop_on_the_flagged_profile(
    risk: RiskApi, risk_consumer: EventConsumer, publisher: Publisher
) -> None:
    # A person of this test only, whatever events other tests leave on the shared topics
    # (theirs are other councils' residents, whose keys differ, unless a code repeats).
    family = one_off_family_name()
    flagged = await risk.upload(
        HEADER
        + csv_row(risk, "rent_arrears", family=family, weeks="10", amount="1300", observed=EARLIER)
    )
    assert flagged["flagged"] == 1
    (flag,) = await risk.events("risk.resident.flagged")
    assert flag["level"] == "high" and flag["returning"] is False

    # The referrals service opens the outreach case from the flag; a partner helps.
    case_id = str(uuid.uuid4())
    keys = resident_keys(
        risk.settings.resident_key_secret.get_secret_value(),
        council=risk.council,
        given_name="Amina",
        family_name=family,
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )
    assert flag["resident_key"] in keys
    # Opened through its use case, not the broker: a case-opened event left on the shared
    # topic would make a profile in every later test's database.
    async with session_factory(risk.engine)() as session:
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=risk.settings.source),
            settings=risk.settings,
        )
        await assessments.record_case_opened(
            uow, case_id=case_id, council=risk.council, resident_keys=keys
        )
    outcome = OutcomeRecorded(
        offer_id=str(uuid.uuid4()),
        case_id=case_id,
        need=Need.MONEY_AND_DEBT,
        partner_id="debt-advice",
        outcome=Outcome.SUPPORT_PROVIDED,
        at=utc_now(),
    )
    sent = await publisher.send(outcome, subject=case_id, source="/upstream/partners")
    await publisher.resend(sent)  # delivered twice: the inbox skips it
    # The same outcome under a new id, last on the case's partition: once it is applied, so
    # were the two before it.
    last = await publisher.send(outcome, subject=case_id, source="/upstream/partners")

    async def handled() -> int:
        return await risk.count("handled_signals", OF_THIS_CASE, c=case_id)

    assert await wait_for(handled, timeout=30, what="the rent arrears handled") == 1

    async def all_three_applied() -> bool:
        ids = {"a": sent.id, "b": last.id}
        return await risk.count("inbox", "event_id IN (:a, :b)", **ids) == 2

    await wait_for(all_three_applied, timeout=30, what="every delivery applied or skipped")
    # This case's rows only: the consumer also reads what other tests left on the shared topics.
    assert await risk.count("outcomes", "case_id = :c", c=case_id) == 1
    assert await risk.count("handled_signals", OF_THIS_CASE, c=case_id) == 1

    # The case closes (as the referrals service would say); later feeds send the same
    # arrears again, and then a notice: only the notice is new, and it flags.
    await risk.sql("UPDATE cases SET open = false WHERE case_id = :c", c=case_id)
    same = await risk.upload(
        HEADER
        + csv_row(risk, "rent_arrears", family=family, weeks="10", amount="1300", observed=LATER)
    )
    notice = await risk.upload(
        HEADER
        + csv_row(risk, "eviction_notice", family=family, notice_type="warrant", notice_date=LATER)
    )
    assert (same["flagged"], notice["flagged"]) == (0, 1)
    again = (await risk.events("risk.resident.flagged"))[-1]
    assert (again["level"], again["returning"]) == ("crisis", True)

    why = await risk.client.get(
        f"/v1/residents/{again['resident_key']}/assessment", headers=risk.token("caseworker")
    )
    assert why.status_code == 200, why.text
    body = why.json()
    assert body["returning"] is True and body["helped_at"] is not None
    assert {(s["type"], s["standing"], s["counted"]) for s in body["signals"]} == {
        ("rent_arrears", "handled", False),
        ("rent_arrears", "same_as_handled", False),
        ("eviction_notice", "new", True),
    }

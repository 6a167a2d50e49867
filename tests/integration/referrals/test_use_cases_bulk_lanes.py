"""Which of the referrals service's events are bulk work (docs/events.md, Bulk lanes): every
event of an outreach case, from its opening to its routing after a caseworker records
consent, and none of a referral's case. On a real migrated PostgreSQL, no broker."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.lanes import outreach_cases
from services.referrals.service_layer import cases, intake, unit_of_work
from shared.events.envelope import utc_now
from shared.events.payloads import ResidentFlagged, RiskAssessed
from shared.identity import seal_identity
from shared.messaging.outbox import LANES, Remembered, lane_of
from shared.vocabulary import RiskLevel
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import consent, finding, new_referral

pytestmark = pytest.mark.integration


async def _outbox_of(db: ReferralsDatabase, case_id: str) -> list[tuple[str, str, int]]:
    rows = await db.rows(
        "SELECT event_type, topic, lane FROM outbox WHERE message_key = :key ORDER BY id",
        key=case_id,
    )
    return [(r["event_type"].split(".")[-2], r["topic"], r["lane"]) for r in rows]


async def _outreach_case(db: ReferralsDatabase) -> str:
    """An outreach case, opened for a flagged resident as the flag's handler opens it."""
    sealed = seal_identity(
        db.settings.resident_key_secret.get_secret_value(),
        {
            "given_name": "Tomasz",
            "family_name": "Nowak",
            "date_of_birth": "1971-06-09",
            "postcode": "E13 9PJ",
            "phone": "020 7946 0011",
        },
    )
    flagged = ResidentFlagged(
        resident_key="k" * 64,
        council=db.council,
        level=RiskLevel.HIGH,
        score=80,
        ruleset_version="v",
        sealed_identity=sealed,
        flagged_at=utc_now(),
    )
    async with db.applying(flagged, subject="k" * 64) as uow:
        await cases.open_outreach_case(
            uow, cases.ResidentFlag(db.council, "k" * 64, sealed, finding(RiskLevel.HIGH))
        )
    (row,) = await db.rows("SELECT id::text FROM cases WHERE origin = 'flag'")
    return str(row["id"])


async def test_an_outreach_case_is_bulk_work_for_its_whole_life_and_a_referral_never(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    outreach = await _outreach_case(db)
    async with db.unit_of_work() as uow:  # a caseworker reaches the resident: routed
        await cases.record_consent(uow, db.caller(), outreach, consent())
    async with db.unit_of_work() as uow:
        referred = (await intake.receive_referral(uow, db.caller(), new_referral())).case_id
    assert referred is not None

    bulk = await _outbox_of(db, outreach)
    assert {kind for kind, _, _ in bulk} >= {"opened", "ready_for_routing"}
    assert {topic for _, topic, _ in bulk} == {"referrals.cases.bulk.v1"}
    assert {lane for _, _, lane in bulk} == {lane_of(outreach, bulk=True)}
    interactive = await _outbox_of(db, referred)
    assert interactive and {topic for _, topic, _ in interactive} == {"referrals.cases.v1"}
    assert all(lane < LANES for _, _, lane in interactive)


async def test_a_case_read_to_change_it_gives_its_events_lane_without_asking_the_database(
    referrals_database: ReferralsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that did not open a case (the API did, or another replica) learns its origin
    from the row its use case reads and locks, so the events it writes for it ask nothing."""
    db = referrals_database
    outreach = await _outreach_case(db)
    async with db.unit_of_work() as uow:
        referred = (await intake.receive_referral(uow, db.caller(), new_referral())).case_id
    assert referred is not None
    asked: list[list[str]] = []

    async def asking(session: AsyncSession, keys: Sequence[str]) -> set[str]:
        asked.append(list(keys))
        return await outreach_cases(session, keys)

    # A process that has seen neither case.
    monkeypatch.setattr(unit_of_work, "_OUTREACH_CASES", Remembered(asking))
    async with db.unit_of_work() as uow:  # a caseworker's use case: consent, then routed
        await cases.record_consent(uow, db.caller(), outreach, consent())
    assessed = RiskAssessed(
        case_id=referred, level="high", score=70, ruleset_version="v", assessed_at=utc_now()
    )
    async with db.applying(assessed, subject=referred) as uow:  # a handler's
        await cases.record_risk_assessment(uow, referred, finding())

    assert asked == []
    assert {kind for kind, _, _ in await _outbox_of(db, outreach)} >= {"ready_for_routing"}
    assert {topic for _, topic, _ in await _outbox_of(db, outreach)} == {"referrals.cases.bulk.v1"}
    written = await _outbox_of(db, referred)
    assert {kind for kind, _, _ in written} >= {"status_changed", "ready_for_routing"}
    assert {topic for _, topic, _ in written} == {"referrals.cases.v1"}

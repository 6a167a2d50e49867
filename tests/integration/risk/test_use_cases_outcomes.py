"""The loop closes, on a real migrated PostgreSQL (no broker, no HTTP): a partner's outcome
for a flagged resident's case is recorded on the profile; the signals the help addressed
are handled, so the same signals re-sent do not flag again, while worse or new ones do (a
returning resident, within the window)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.risk.adapters.profiles import lock_council
from services.risk.domain.feeds import parse_csv
from services.risk.service_layer import assessments, outcomes, signals
from shared.events.envelope import utc_now
from shared.identity import resident_keys
from shared.vocabulary import Need, Outcome, RiskLevel
from tests.integration.messaging_helpers import wait_for, waiting_on_a_lock
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import data_team

pytestmark = pytest.mark.integration

NOW = utc_now()
THEN = NOW - timedelta(days=45)  # the first flag: the cooling-off (30 days) has passed since
LONG_AGO = (date.today() - timedelta(days=50)).isoformat()  # the first notice
RECENT = (date.today() - timedelta(days=3)).isoformat()


def notice(db: RiskDatabase, given: str, notice_type: str, observed_on: str) -> dict[str, Any]:
    return {
        "type": "eviction_notice",
        "council": db.council,
        "source": "newham-housing",
        "observed_on": observed_on,
        "resident": {
            "given_name": given,
            "family_name": "Okafor",
            "date_of_birth": "1984-03-02",
            "postcode": "E15 4HT",
        },
        # The same notice (its type and date), sent again by a later feed.
        "attributes": {"notice_type": notice_type, "notice_date": LONG_AGO},
    }


def keys_of(db: RiskDatabase, given: str) -> list[str]:
    return resident_keys(
        db.settings.resident_key_secret.get_secret_value(),
        council=db.council,
        given_name=given,
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )


async def send(db: RiskDatabase, batch: list[dict[str, Any]], at: datetime) -> int:
    async with db.unit_of_work() as uow:
        uow.clock = lambda: at
        return (await signals.record_signals(uow, data_team(db), batch)).flagged


async def flag_and_help(db: RiskDatabase, outcome: Outcome, need: Need = Need.HOUSING) -> str:
    """Amina and Tomasz are flagged for an eviction notice; Amina's outreach case gets an
    outcome from a partner and closes. Tomasz is never helped."""
    first = [
        notice(db, "Amina", "section_8", LONG_AGO),
        notice(db, "Tomasz", "section_8", LONG_AGO),
    ]
    assert await send(db, first, THEN) == 2
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:  # the referrals service opens the outreach case
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of(db, "Amina")
        )
    async with db.unit_of_work() as uow:
        recorded = await outcomes.record_outcome(
            uow, outcomes.OutcomeToRecord(case_id, need, outcome, THEN + timedelta(days=1))
        )
    assert recorded.recorded
    async with db.unit_of_work() as uow:
        await assessments.record_case_closed(uow, case_id)
    return case_id


async def test_help_that_arrived_stops_the_same_signals_flagging_again_but_not_worse_ones(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    await flag_and_help(db, Outcome.SUPPORT_PROVIDED)
    assert await db.count("outcomes", "helped") == 1
    assert await db.count("handled_signals") == 1  # Amina's notice; housing addresses it

    # A later feed says the same again (a new observation of the same notice) for both.
    again = [notice(db, "Amina", "section_8", RECENT), notice(db, "Tomasz", "section_8", RECENT)]
    assert await send(db, again, NOW) == 1
    tomasz = (await db.events("risk.resident.flagged"))[-1]  # after the two first flags
    assert tomasz["resident_key"] == keys_of(db, "Tomasz")[0] and tomasz["returning"] is False

    # Worse: the notice became a warrant. Amina is flagged again, as a returning resident.
    worse = (date.today() - timedelta(days=2)).isoformat()
    assert await send(db, [notice(db, "Amina", "warrant", worse)], NOW) == 1
    amina = (await db.events("risk.resident.flagged"))[-1]
    assert amina["resident_key"] == keys_of(db, "Amina")[0]
    assert (amina["level"], amina["returning"]) == ("crisis", True)
    assert amina["helped_at"].startswith((THEN + timedelta(days=1)).date().isoformat())

    async with db.unit_of_work() as uow:
        why = await assessments.explain_resident(uow, amina["resident_key"], council=None)
    assert why.level is RiskLevel.CRISIS and why.returning
    assert [(s.observed_on.isoformat(), s.standing.value, s.counted) for s in why.signals] == [
        (LONG_AGO, "handled", False),
        (RECENT, "same_as_handled", False),
        (worse, "worse", True),
    ]
    assert "Help was recorded on" in why.explanation and "new or worse" in why.explanation


async def test_help_that_did_not_arrive_or_addressed_another_need_handles_nothing(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    await flag_and_help(db, Outcome.RESIDENT_UNCONTACTABLE)
    assert await db.count("outcomes", "NOT helped") == 1 and await db.count("handled_signals") == 0
    again = [notice(db, "Amina", "section_8", RECENT)]
    assert await send(db, again, NOW) == 1  # flagged again, as before: nothing was handled
    assert (await db.events("risk.resident.flagged"))[-1]["returning"] is False


async def test_food_help_does_not_handle_an_eviction_notice(risk_database: RiskDatabase) -> None:
    db = risk_database
    await flag_and_help(db, Outcome.SUPPORT_PROVIDED, need=Need.FOOD)
    assert await db.count("outcomes", "helped") == 1 and await db.count("handled_signals") == 0
    assert await send(db, [notice(db, "Amina", "section_8", RECENT)], NOW) == 1
    flag = (await db.events("risk.resident.flagged"))[-1]
    assert flag["returning"] is True  # help arrived (food) within the window: returning
    async with db.unit_of_work() as uow:
        why = await assessments.explain_resident(uow, flag["resident_key"], council=None)
    assert {s.standing.value for s in why.signals} == {"new"}


async def test_an_outcome_is_recorded_once_and_one_for_an_unknown_case_is_ignored(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    case_id = await flag_and_help(db, Outcome.SUPPORT_PROVIDED)
    same = outcomes.OutcomeToRecord(
        case_id, Need.HOUSING, Outcome.SUPPORT_PROVIDED, THEN + timedelta(days=1)
    )
    unknown = outcomes.OutcomeToRecord(
        str(uuid.uuid4()), Need.HOUSING, Outcome.SUPPORT_PROVIDED, NOW
    )
    async with db.unit_of_work() as uow:
        assert (await outcomes.record_outcome(uow, same)).recorded is False
    async with db.unit_of_work() as uow:
        assert (await outcomes.record_outcome(uow, unknown)).recorded is False
    assert await db.count("outcomes") == 1 and await db.count("handled_signals") == 1


async def test_a_feed_import_respects_handled_signals(risk_database: RiskDatabase) -> None:
    """The bulk path (a file, in batches of 3 here) sets handled signals aside too."""
    db = risk_database
    await flag_and_help(db, Outcome.SUPPORT_PROVIDED)

    async def lines() -> AsyncIterator[str]:
        yield (
            "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
            "notice_type,notice_date"
        )
        for given in ("Amina", "Tomasz", "Priya", "Dee"):
            yield (
                f"eviction_notice,{db.council},{given},Okafor,1984-03-02,E15 4HT,"
                f"newham-housing,{RECENT},section_8,{LONG_AGO}"
            )

    async with db.unit_of_work() as uow:
        uow.clock = lambda: NOW
        imported = await signals.import_signals(uow, data_team(db), parse_csv(lines()), "csv")
    assert (imported.rows_stored, imported.flagged) == (4, 3)  # all but Amina
    flagged_now = {e["resident_key"] for e in (await db.events("risk.resident.flagged"))[2:]}
    assert keys_of(db, "Amina")[0] not in flagged_now and len(flagged_now) == 3


async def test_an_outcome_waits_for_an_import_of_the_same_council(
    risk_database: RiskDatabase,
) -> None:
    """An import's batch holds the council (``lock_council``) while it decides flags from
    the signals it stores: an outcome arriving meanwhile waits for it, so each sees the
    other's work (help marks the new signals handled, or the import sees the help)."""
    db = risk_database
    first = [notice(db, "Amina", "section_8", LONG_AGO)]
    assert await send(db, first, THEN) == 1
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of(db, "Amina")
        )

    async def record() -> outcomes.OutcomeRecorded:
        async with db.unit_of_work() as uow:
            return await outcomes.record_outcome(
                uow, outcomes.OutcomeToRecord(case_id, Need.HOUSING, Outcome.SUPPORT_PROVIDED, NOW)
            )

    async with db.unit_of_work() as importing, importing.transaction():
        await lock_council(importing.session, db.council)
        outcome = asyncio.create_task(record())
        await wait_for(
            lambda: waiting_on_a_lock(db.engine),
            timeout=20,
            what="the outcome to wait for the import",
        )
        assert not outcome.done()
    assert (await outcome).recorded

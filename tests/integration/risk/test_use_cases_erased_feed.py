"""An old feed re-sent after an erasure, on a real migrated PostgreSQL: the erased
resident's rows observed before the erasure are refused (not stored, not assessed, counted
as rejected with a plain reason), her row observed after it is stored as anyone's, and
another resident's rows are untouched; the report accounts for every row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.risk.domain.feeds import parse_csv
from services.risk.handlers import EVENT_HANDLERS
from services.risk.service_layer import signals
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.db import session_factory
from shared.erasure import tombstone
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.events.payloads import ErasureRequested
from shared.identity import resident_keys
from shared.messaging.outbox import Outbox
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import data_team

pytestmark = pytest.mark.integration

HEADER = "type,council,given_name,family_name,postcode,source,observed_on"


def _days_ago(days: int) -> date:
    return date.today() - timedelta(days=days)


async def _import(db: RiskDatabase, rows: list[str]) -> signals.ImportOutcome:
    async def lines() -> AsyncIterator[str]:
        yield HEADER
        for row in rows:
            yield row

    async with db.unit_of_work() as uow:
        return await signals.import_signals(uow, data_team(db), parse_csv(lines()), "csv")


async def _erase_through_the_handler(db: RiskDatabase, request: ErasureRequested) -> None:
    event = CATALOGUE.envelope(request, source="/upstream/referrals", subject=request.request_id)
    async with session_factory(db.engine)() as session, session.begin():
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=db.settings.source),
            settings=db.settings,
            rulesets=db.rulesets,
            event=event,
        )
        await dict(EVENT_HANDLERS)[ErasureRequested](request, uow)


async def test_a_feed_resent_after_an_erasure_does_not_bring_her_back(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database  # import_batch_size=3: the feed below is stored in two batches
    secret = db.settings.resident_key_secret.get_secret_value()
    amina = resident_keys(
        secret, council=db.council, given_name="Amina", family_name="Okafor", postcode="E15 4HT"
    )
    first = await _import(
        db, [f"job_loss,{db.council},Amina,Okafor,E15 4HT,dwp-feed,{_days_ago(30)}"]
    )
    assert first.rows_stored == 1

    erased_at = utc_now() - timedelta(days=10)
    erasure_day = erased_at.astimezone(ZoneInfo("Europe/London")).date()
    await _erase_through_the_handler(
        db,
        ErasureRequested(
            request_id=str(uuid.uuid4()),
            council=db.council,
            case_ids=[],
            resident_keys=amina[:1],
            ground="objection",
            requested_at=erased_at,
        ),
    )
    assert await db.count("profiles") == 0
    assert await db.count("erased_identifiers", "hash = :h", h=tombstone(secret, amina[0])) == 1

    resent = await _import(
        db,
        [
            # line 2: her row of the old feed, observed before the erasure
            f"job_loss,{db.council},Amina,Okafor,E15 4HT,dwp-feed,{_days_ago(30)}",
            # line 3: someone else's row of the same feed
            f"job_loss,{db.council},Tomasz,Nowak,E15 4HT,dwp-feed,{_days_ago(30)}",
            # line 4: hers, observed after the erasure: the council's new data
            f"job_loss,{db.council},Amina,Okafor,E15 4HT,dwp-feed,{_days_ago(3)}",
            # line 5: a bad row, refused as before
            f"job_loss,{db.council},Dee,Mensah,not a postcode,dwp-feed,{_days_ago(3)}",
            # line 6: hers, observed on the day of the erasure (a date is not after it)
            f"job_loss,{db.council},Amina,Okafor,E15 4HT,dwp-feed,{erasure_day}",
        ],
    )

    assert (resent.rows_read, resent.rows_stored, resent.rows_duplicate) == (5, 2, 0)
    assert resent.rows_rejected == 3
    assert resent.rows_read == resent.rows_stored + resent.rows_duplicate + resent.rows_rejected
    assert [e.line for e in resent.errors] == [2, 5, 6]
    erased_errors = [e for e in resent.errors if e.line in (2, 6)]
    assert {(e.field, e.reason) for e in erased_errors} == {("resident", signals.ERASED_REASON)}
    assert "erased" not in next(e.reason for e in resent.errors if e.line == 5)
    (recorded,) = await db.rows(
        "SELECT rows_read, rows_stored, rows_rejected FROM imports WHERE id = :i",
        i=resent.import_id,
    )
    assert recorded == {"rows_read": 5, "rows_stored": 2, "rows_rejected": 3}

    # She has one profile again, holding only the signal observed after the erasure.
    (profile,) = await db.rows("SELECT profile_id FROM profile_keys WHERE key = :k", k=amina[0])
    observed = await db.rows(
        "SELECT observed_on FROM signals WHERE profile_id = :p", p=profile["profile_id"]
    )
    assert observed == [{"observed_on": _days_ago(3)}]
    assert await db.count("profiles") == 2  # hers (new) and Tomasz's
    assert await db.count("signals") == 2


async def test_without_an_erasure_nothing_is_refused(risk_database: RiskDatabase) -> None:
    """Tombstones of other people's keys refuse nobody else (one anti-join, no false hits)."""
    db = risk_database
    secret = db.settings.resident_key_secret.get_secret_value()
    await db.sql(
        "INSERT INTO erased_identifiers (hash, erased_at) VALUES (:h, now())",
        h=tombstone(secret, "someone-else's key"),
    )
    outcome = await _import(
        db,
        [
            f"job_loss,{db.council},Person{n},Mensah,E8 1DY,dwp-feed,{_days_ago(40)}"
            for n in range(7)
        ],
    )
    assert (outcome.rows_read, outcome.rows_stored, outcome.rows_rejected) == (7, 7, 0)

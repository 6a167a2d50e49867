"""The signals use cases on a real migrated PostgreSQL: no broker, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from services.risk.adapters import bulk
from services.risk.domain.feeds import parse_csv
from services.risk.service_layer import signals
from services.risk.service_layer.active_ruleset import NoActiveRuleset
from shared.db import driver
from shared.errors import Invalid
from shared.events.payloads import ResidentFlagged
from shared.identity import resident_keys, unseal_identity
from shared.messaging.outbox import lane_of
from tests.integration.risk.conftest import RiskDatabase

pytestmark = pytest.mark.integration

RECENT = (date.today() - timedelta(days=3)).isoformat()


def signal(council: str, type_: str, given: str = "Amina", **attributes: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "council": council,
        "source": "newham-rent",
        "observed_on": RECENT,
        "resident": {
            "given_name": given,
            "family_name": "Okafor",
            "date_of_birth": "1984-03-02",
            "postcode": "E15 4HT",
            "council_reference": "HB-22817",
        },
        "attributes": attributes,
    }


def data_team(db: RiskDatabase) -> signals.Submitter:
    return signals.Submitter(db.council, "data-team-person", own_council_only=True)


async def test_a_batch_is_stored_once_and_the_import_is_recorded(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    batch = [
        signal(db.council, "rent_arrears", weeks=3, amount="420.50"),
        signal(db.council, "job_loss", given="Tomasz"),
        signal(
            db.council, "rent_arrears", given="Cal", weeks=-1, amount="10"
        ),  # refused: negative weeks
        signal("E09000001", "job_loss", given="Dee"),  # refused: another council's resident
    ]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, data_team(db), batch)
    assert (outcome.rows_read, outcome.rows_stored, outcome.rows_rejected) == (4, 2, 2)
    assert [(e.line, e.field) for e in outcome.errors] == [
        (3, "attributes.weeks"),
        (4, "council"),
    ]
    assert await db.count("signals") == 2 and await db.count("profiles") == 2
    (record,) = await db.rows("SELECT * FROM imports WHERE id = :id", id=outcome.import_id)
    assert (record["council"], record["format"], record["rows_stored"]) == (db.council, "json", 2)
    assert record["rows_rejected"] == 2 and record["finished_at"] is not None

    async with db.unit_of_work() as uow:
        again = await signals.record_signals(uow, data_team(db), batch)
    assert (again.rows_stored, again.rows_duplicate, again.flagged) == (0, 2, 0)
    assert await db.count("signals") == 2 and await db.count("imports") == 2


async def test_crossing_the_flag_level_writes_one_sealed_flag_to_the_outbox(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    async with db.unit_of_work() as uow:
        first = await signals.record_signals(
            uow, data_team(db), [signal(db.council, "rent_arrears", weeks=3, amount="420")]
        )
    assert first.flagged == 0 and await db.events("risk.resident.flagged") == []

    notice = signal(db.council, "eviction_notice", notice_type="section_8", notice_date=RECENT)
    async with db.unit_of_work() as uow:
        crossed = await signals.record_signals(uow, data_team(db), [notice])
    async with db.unit_of_work() as uow:  # a higher-or-equal level within the cooling-off
        later = await signals.record_signals(uow, data_team(db), [signal(db.council, "job_loss")])
    assert (crossed.flagged, later.rows_stored, later.flagged) == (1, 1, 0)

    (flag,) = await db.events("risk.resident.flagged")
    assert flag["level"] == "crisis" and flag["council"] == db.council
    secret = db.settings.resident_key_secret.get_secret_value()
    assert unseal_identity(secret, flag["sealed_identity"])["council_reference"] == "HB-22817"
    assert (
        flag["resident_key"]
        == resident_keys(
            secret,
            council=db.council,
            given_name="Amina",
            family_name="Okafor",
            date_of_birth=date(1984, 3, 2),
        )[0]
    )
    flagged = await db.rows("SELECT level, flagged, case_id FROM assessments WHERE flagged")
    assert flagged == [{"level": "crisis", "flagged": True, "case_id": None}]


async def test_a_file_is_stored_in_batches_of_the_configured_size(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database  # import_batch_size=3: seven rows, three transactions

    async def lines() -> AsyncIterator[str]:
        yield "type,council,given_name,family_name,postcode,source,observed_on"
        for n in range(7):
            yield f"job_loss,{db.council},Person{n},Mensah,E8 1DY,dwp-feed,{RECENT}"

    async with db.unit_of_work() as uow:
        outcome = await signals.import_signals(uow, data_team(db), parse_csv(lines()), "csv")
    assert (outcome.rows_read, outcome.rows_stored, outcome.rows_rejected) == (7, 7, 0)
    assert await db.count("signals") == 7 and await db.count("profiles") == 7


async def test_refusals_store_nothing(risk_database: RiskDatabase) -> None:
    db = risk_database
    too_many = [signal(db.council, "job_loss")] * (signals.MAX_SIGNALS_A_REQUEST + 1)
    async with db.unit_of_work() as uow:
        with pytest.raises(Invalid) as refused:
            await signals.record_signals(uow, data_team(db), too_many)
    assert refused.value.errors == [
        ("body", "at most 1,000 signals a request: import larger files")
    ]

    # Without a ruleset in force a batch cannot be assessed: it is rolled back whole.
    await db.sql("UPDATE rulesets SET active = false")
    async with db.unit_of_work() as uow:
        with pytest.raises(NoActiveRuleset):
            await signals.record_signals(uow, data_team(db), [signal(db.council, "job_loss")])
    assert await db.count("signals") == 0 and await db.count("profiles") == 0
    assert await db.count("imports") == 0


async def test_a_batch_partly_held_already_stores_the_new_rows_only(
    risk_database: RiskDatabase,
) -> None:
    """A batch whose rows are all new is copied in at once; one holding rows stored before,
    or a row twice, is stored the slower way, skipping those: the report is the same."""
    db = risk_database
    first = [signal(db.council, "job_loss", given=name) for name in ("Ade", "Bea", "Cal")]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, data_team(db), first)
    assert (outcome.rows_stored, outcome.rows_duplicate) == (3, 0)

    again = [
        signal(db.council, "bereavement", given="Dee"),  # new
        first[0],  # held
        signal(db.council, "bereavement", given="Dee"),  # the first row, twice
        first[1],  # held
        signal(db.council, "bereavement", given="Eve"),  # new
        first[2],  # held
    ]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, data_team(db), again)
    assert (outcome.rows_read, outcome.rows_stored, outcome.rows_duplicate) == (6, 2, 4)
    assert await db.count("signals") == 5 and await db.count("profiles") == 5
    assert await db.count("signals", "type = 'bereavement'") == 2


async def test_an_operators_batch_of_two_councils_stores_each(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    operator = signals.Submitter("operator", "operator-person", own_council_only=False)
    other = "E09000012"
    batch = [
        signal(db.council, "job_loss", given="Ade"),
        signal(other, "job_loss", given="Bea"),
        signal(db.council, "bereavement", given="Ade"),
    ]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, operator, batch)
    assert (outcome.rows_stored, outcome.rows_duplicate) == (3, 0)
    # Both councils' rows again, with one new each: both take the slower way in one
    # transaction.
    batch += [signal(db.council, "job_loss", given="Cal"), signal(other, "job_loss", given="Dee")]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, operator, batch)
    assert (outcome.rows_stored, outcome.rows_duplicate) == (2, 3)
    profiles = await db.rows("SELECT council, count(*) AS n FROM profiles GROUP BY council")
    assert {row["council"]: row["n"] for row in profiles} == {db.council: 2, other: 2}


async def test_flags_written_together_are_the_events_one_flag_writes(
    risk_database: RiskDatabase,
) -> None:
    """A feed's flags go to the outbox in one statement: each row is what ``Outbox.add``
    writes for the same event (topic, key, lane, type and envelope)."""
    db = risk_database
    notices = [
        signal(
            db.council,
            "eviction_notice",
            given=name,
            notice_type="section_8",
            notice_date=RECENT,
        )
        for name in ("Ade", "Bea", "Cal", "Dee")
    ]
    async with db.unit_of_work() as uow:
        outcome = await signals.record_signals(uow, data_team(db), notices)
    assert outcome.flagged == 4
    bulk = await db.rows(
        "SELECT topic, message_key, lane, event_type, envelope FROM outbox ORDER BY id"
    )
    assert len(bulk) == 4 and len({row["message_key"] for row in bulk}) == 4

    (first, *_) = bulk
    payload = ResidentFlagged.model_validate(first["envelope"]["data"])
    async with db.unit_of_work() as uow, uow.transaction():
        await uow.outbox.add(uow.session, payload, subject=first["message_key"], bulk=True)
    one = (await db.rows("SELECT topic, message_key, lane, event_type, envelope FROM outbox"))[-1]

    def shape(row: dict[str, Any]) -> dict[str, Any]:
        envelope = {k: v for k, v in row["envelope"].items() if k not in {"id", "time"}}
        envelope.pop("correlationid")  # the event's own id, with no trace in hand
        return {**row, "envelope": envelope}

    assert shape(first) == shape(one)
    assert first["lane"] == lane_of(first["message_key"], bulk=True)  # flags are bulk work
    assert first["topic"] == "risk.assessments.bulk.v1"


async def test_a_copy_that_would_repeat_a_key_copies_nothing(risk_database: RiskDatabase) -> None:
    db = risk_database
    await db.sql(
        "INSERT INTO profiles (id, council) VALUES (:p, :c)",
        p="00000000-0000-7000-8000-000000000001",
        c=db.council,
    )
    rows = [("key-a", "00000000-0000-7000-8000-000000000001")]
    async with db.unit_of_work() as uow, uow.transaction():
        connection = await driver(uow.session)
        assert await bulk.copy_unless_held(connection, "profile_keys", ("key", "profile_id"), rows)
        held = [("key-b", rows[0][1]), ("key-a", rows[0][1])]
        assert not await bulk.copy_unless_held(
            connection, "profile_keys", ("key", "profile_id"), held
        )
        # The transaction goes on, as if the refused copy had not been tried.
        await connection.execute("SELECT 1")
    assert await db.count("profile_keys") == 1

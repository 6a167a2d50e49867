"""The signals use cases on a real migrated PostgreSQL: no broker, no HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from services.risk.domain.feeds import parse_csv
from services.risk.service_layer import signals
from services.risk.service_layer.active_ruleset import NoActiveRuleset
from shared.errors import Invalid
from shared.identity import resident_keys, unseal_identity
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
            secret, given_name="Amina", family_name="Okafor", date_of_birth=date(1984, 3, 2)
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

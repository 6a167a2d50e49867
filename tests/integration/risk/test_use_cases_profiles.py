"""Re-linking profiles after the referrals service merges two records of one resident, on a
real migrated PostgreSQL: the signals held under either record count for the person; and
splitting them again (through the event's handler) when the merge is undone."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.risk import handlers
from services.risk.service_layer import assessments, profiles, signals
from shared.events.payloads import ResidentsUnmerged
from shared.identity import resident_keys
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import data_team, signal

pytestmark = pytest.mark.integration


def _keys(db: RiskDatabase, given: str) -> list[str]:
    return resident_keys(
        db.settings.resident_key_secret.get_secret_value(),
        council=db.council,
        given_name=given,
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )


async def test_a_merge_relinks_the_two_profiles_into_one(risk_database: RiskDatabase) -> None:
    db = risk_database
    async with db.unit_of_work() as uow:
        await signals.record_signals(
            uow,
            data_team(db),
            [
                signal(db.council, "rent_arrears", weeks=10, amount="1300"),
                signal(db.council, "job_loss", given="Amnia"),  # the same person, mistyped
            ],
        )
    assert await db.count("profiles") == 2
    (before,) = await db.rows("SELECT count(DISTINCT profile_id) AS n FROM signals")
    assert before["n"] == 2

    merge = profiles.ResidentsMerge(
        council=db.council,
        merged_keys=tuple(_keys(db, "Amnia")),
        into_keys=tuple(_keys(db, "Amina")),
    )
    async with db.unit_of_work() as uow:
        survivor = await profiles.relink_profiles(uow, merge)
    assert survivor is not None
    assert await db.count("profiles") == 1
    assert await db.count("signals", "profile_id = :p", p=survivor) == 2
    keys = {row["key"] for row in await db.rows("SELECT key FROM profile_keys")}
    assert set(merge.merged_keys) | set(merge.into_keys) <= keys
    assert await db.count("profile_keys", "profile_id <> :p", p=survivor) == 0

    async with db.unit_of_work() as uow:  # applied again (a redelivery): nothing changes
        assert await profiles.relink_profiles(uow, merge) == survivor
    assert await db.count("profiles") == 1


async def test_an_undone_merge_splits_the_profile_again_and_a_replay_changes_nothing(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    amina, amnia = _keys(db, "Amina"), _keys(db, "Amnia")
    theirs = str(uuid.uuid4())  # the case of the record merged away, withdrawn by the merge
    async with db.unit_of_work() as uow:
        await signals.record_signals(
            uow,
            data_team(db),
            [
                signal(db.council, "rent_arrears", weeks=10, amount="1300"),
                signal(db.council, "job_loss", given="Amnia"),
            ],
        )
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=theirs, council=db.council, resident_keys=amnia
        )
    merge = profiles.ResidentsMerge(db.council, tuple(amnia), tuple(amina))
    async with db.unit_of_work() as uow:
        folded = await profiles.relink_profiles(uow, merge)
    async with db.unit_of_work() as uow:
        await assessments.record_case_closed(uow, theirs)
    assert await db.count("profiles") == 1

    unmerged = ResidentsUnmerged(
        merge_id=str(uuid.uuid4()),
        council=db.council,
        restored_resident_keys=amnia,
        into_resident_keys=amina,
        restored_case_ids=[theirs],
        restored_case_id=theirs,
        survivor_case_id=None,
        unmerged_at=datetime.now(UTC),
    )

    async def split() -> dict[str, Any]:
        async with db.unit_of_work() as uow:
            await handlers.on_residents_unmerged(unmerged, uow)
        by_type = await db.rows("SELECT type, profile_id FROM signals")
        keys = await db.rows("SELECT key, profile_id FROM profile_keys")
        (case,) = await db.rows("SELECT profile_id, open FROM cases WHERE case_id = :c", c=theirs)
        return {
            "profiles": await db.count("profiles"),
            "signals": {row["type"]: str(row["profile_id"]) for row in by_type},
            "keys": {row["key"]: str(row["profile_id"]) for row in keys},
            "case": (str(case["profile_id"]), case["open"]),
        }

    after = await split()
    assert after["profiles"] == 2
    restored = after["signals"]["job_loss"]
    assert restored != folded and after["signals"]["rent_arrears"] == folded
    assert {after["keys"][k] for k in amnia} == {restored}
    assert {after["keys"][k] for k in amina} == {folded}
    assert after["case"] == (restored, True)  # its case, open again

    assert await split() == after  # applied again (a redelivery): nothing changes

"""Re-linking profiles after the referrals service merges two records of one resident, on a
real migrated PostgreSQL: the signals held under either record count for the person."""

from __future__ import annotations

from datetime import date

import pytest

from services.risk.service_layer import profiles, signals
from shared.identity import resident_keys
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import data_team, signal

pytestmark = pytest.mark.integration


def _keys(db: RiskDatabase, given: str) -> list[str]:
    return resident_keys(
        db.settings.resident_key_secret.get_secret_value(),
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

"""Merges through the broker: the risk consumer folds two records' profiles when the
referrals service merges them, and splits them back when the merge is undone — once,
however often the undo is delivered."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from shared.events.envelope import utc_now
from shared.events.payloads import ResidentsMerged, ResidentsUnmerged
from shared.identity import resident_keys
from shared.messaging.consumer import EventConsumer
from tests.integration.messaging_helpers import wait_for
from tests.integration.risk.conftest import RiskApi
from tests.integration.risk.test_signals_and_rules import HEADER, csv_row, one_off_family_name
from tests.support.services import Publisher

pytestmark = pytest.mark.integration


async def test_an_undone_merge_splits_the_profiles_back_once(
    risk: RiskApi, risk_consumer: EventConsumer, publisher: Publisher
) -> None:
    # A person of this test only, whatever events other tests leave on the shared topics
    # (theirs are other councils' residents, whose keys differ, unless a code repeats).
    family = one_off_family_name()
    await risk.upload(
        HEADER
        + csv_row(risk, "rent_arrears", family=family, weeks="10", amount="1300")
        + csv_row(
            risk, "job_loss", family=family, given="Amnia"
        )  # another record: a typo, or someone else
    )

    def keys(given: str) -> list[str]:
        return resident_keys(
            risk.settings.resident_key_secret.get_secret_value(),
            council=risk.council,
            given_name=given,
            family_name=family,
            date_of_birth=date(1984, 3, 2),
            postcode="E15 4HT",
        )

    ours = {f"k{i}": key for i, key in enumerate([*keys("Amina"), *keys("Amnia")])}
    among_ours = "key IN (" + ", ".join(f":{name}" for name in ours) + ")"

    async def profiles() -> int:
        # This test's two people only: other tests share the database and the topics.
        return await risk.count(
            "(SELECT DISTINCT profile_id FROM profile_keys) p",
            f"p.profile_id IN (SELECT profile_id FROM profile_keys WHERE {among_ours})",
            **ours,
        )

    assert await profiles() == 2
    merge_id, survivor_case = str(uuid.uuid4()), str(uuid.uuid4())
    merged = ResidentsMerged(
        merge_id=merge_id,
        council=risk.council,
        merged_resident_keys=keys("Amnia"),
        into_resident_keys=keys("Amina"),
        survivor_case_id=survivor_case,
        merged_at=utc_now(),
    )
    await publisher.send(merged, subject=survivor_case, source="/upstream/referrals")

    async def folded() -> bool:
        return await profiles() == 1

    await wait_for(folded, timeout=30, what="the profiles folded")

    unmerged = ResidentsUnmerged(
        merge_id=merge_id,
        council=risk.council,
        restored_resident_keys=keys("Amnia"),
        into_resident_keys=keys("Amina"),
        survivor_case_id=survivor_case,
        unmerged_at=utc_now(),
    )
    sent = await publisher.send(unmerged, subject=survivor_case, source="/upstream/referrals")
    await publisher.resend(sent)  # delivered twice: the inbox skips it
    again = await publisher.send(
        unmerged, subject=survivor_case, source="/upstream/referrals"
    )  # the same undo under a new id
    ids = {"a": sent.id, "b": again.id}

    async def applied() -> bool:
        return await risk.count("inbox", "event_id IN (:a, :b)", **ids) == 2

    await wait_for(applied, timeout=30, what="the merge and both undo events applied")
    assert await profiles() == 2
    # Each record's keys reach the profile holding the signal sent under them, not the other.
    joined = "signals s JOIN profile_keys k ON k.profile_id = s.profile_id"
    for given, mine, theirs in (
        ("Amina", "rent_arrears", "job_loss"),
        ("Amnia", "job_loss", "rent_arrears"),
    ):
        for key in keys(given):
            assert await risk.count(joined, "s.type = :t AND k.key = :k", t=mine, k=key) == 1
            assert await risk.count(joined, "s.type = :t AND k.key = :k", t=theirs, k=key) == 0

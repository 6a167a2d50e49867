"""The periodic sweeps read what is due, not the years of history a council's database
keeps, on a real PostgreSQL: the retention sweep, every hour, once read every resident and,
for each, every case (measured at hours a pass with 300,000 residents). Asserted by the
rows the plan reads, never by time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from services.referrals.adapters import erasure as erasure_db
from shared.events.envelope import utc_now
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.support.plans import rows_read

pytestmark = pytest.mark.integration

HISTORY = 5_000  # residents whose case ended recently, so not due
DUE = 10  # residents whose case ended before the cutoff

_RESIDENTS = """
    INSERT INTO residents (id, council, given_name, family_name, norm_given, norm_family,
        preferred_contact, preferred_language, interpreter_needed)
    SELECT gen_random_uuid(), :council, 'Given', 'Family ' || g, 'given', 'family ' || g,
        'phone', 'en', false
    FROM generate_series(1, :n) AS g
"""
_CASES = """
    INSERT INTO cases (id, council, resident_id, origin, status, priority, urgency, needs,
        circumstances, lawful_basis, closed_at, updated_at)
    SELECT gen_random_uuid(), :council, r.id, 'referral', 'closed', 1, 'low', '[]', '[]',
        'consent', :ended, :ended
    FROM residents r WHERE NOT EXISTS (SELECT FROM cases c WHERE c.resident_id = r.id)
"""


async def test_the_retention_sweep_reads_the_cases_ended_before_its_cutoff_not_every_resident(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    now = utc_now()
    cutoff = now - timedelta(days=6 * 365)
    async with db.engine.begin() as connection:
        for count, ended in (
            (DUE, cutoff - timedelta(days=30)),
            (HISTORY, now - timedelta(days=9)),
        ):
            await connection.execute(text(_RESIDENTS), {"council": db.council, "n": count})
            await connection.execute(text(_CASES), {"council": db.council, "ended": ended})
        await connection.execute(text("ANALYZE residents"))
        await connection.execute(text("ANALYZE cases"))

    async with db.engine.connect() as connection:
        due = (
            await connection.execute(erasure_db._RESIDENTS_DUE, {"cutoff": cutoff, "batch": 500})
        ).all()
        explained = (
            await connection.execute(
                text(f"EXPLAIN (ANALYZE, FORMAT JSON) {erasure_db._RESIDENTS_DUE.text}"),
                {"cutoff": cutoff, "batch": 500},
            )
        ).scalar_one()

    assert len(due) == DUE
    (plan,) = explained
    # The ten due, their cases and their checks: not the 5,000 residents kept.
    assert rows_read(plan["Plan"]) < HISTORY // 5

"""An erasure and a read of the same resident, at once, on a real PostgreSQL: a read writes
its audit row (the ids it showed) at its end, in its snapshot, and an erasure rewrites
those ids in the trail. A read whose snapshot began before the erasure committed must not
leave its row, ids in clear, after the rewrite; a read begun while the erasure is under way
must see the erasure. The trail is what they take turns on (``shared.audit``:
``hold_for_a_read``, ``take_for_a_rewrite``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.referrals.adapters import cases as cases_db
from services.referrals.service_layer import cases, erasure, intake
from shared import erasure as shared_erasure
from shared.erasure import ErasureGround
from shared.errors import NotFound
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import ig, new_referral

pytestmark = pytest.mark.integration

# How long a test waits to see a statement blocked on a lock, or a task end, before it
# goes on: far longer than either takes when it happens at all.
PATIENCE_S = 10.0


async def _referred(db: ReferralsDatabase) -> tuple[str, str]:
    """A resident referred, and her case (nothing live on it: she may be erased)."""
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), new_referral())
    assert receipt.case_id is not None
    (row,) = await db.rows("SELECT resident_id FROM cases WHERE id = :id", id=receipt.case_id)
    return str(row["resident_id"]), receipt.case_id


async def _erase(db: ReferralsDatabase, resident_id: str) -> None:
    async with db.unit_of_work() as uow:
        await erasure.request_erasure(uow, ig(db.council), resident_id, ErasureGround.OBJECTION)


async def _waiting_on_the_trail(db: ReferralsDatabase, mode: str, task: asyncio.Task[Any]) -> bool:
    """Whether a statement locking the audit trail in ``mode`` waits on a lock (rather than
    ``task`` ending first, or neither within ``PATIENCE_S``)."""
    deadline = asyncio.get_running_loop().time() + PATIENCE_S
    while asyncio.get_running_loop().time() < deadline and not task.done():
        waiting = await db.rows(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = :q",
            q=f"LOCK TABLE audit_log IN {mode} MODE",
        )
        if waiting:
            return True
        await asyncio.sleep(0.02)
    return False


async def _rows_naming(db: ReferralsDatabase, *ids: str) -> list[dict[str, Any]]:
    """The audit rows that still name any of ``ids`` in clear."""
    found: list[dict[str, Any]] = []
    for identifier in ids:
        found += await db.rows(
            "SELECT operation FROM audit_log WHERE resident_ids ? :id OR case_ids ? :id",
            id=identifier,
        )
    return found


async def test_an_erasure_waits_for_a_read_begun_before_it_and_rewrites_that_reads_row(
    referrals_database: ReferralsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = referrals_database
    resident_id, case_id = await _referred(db)
    erasing: list[asyncio.Task[None]] = []
    waited: list[bool] = []
    read_consent = cases_db.current_consent

    async def consent_then_an_erasure(*args: Any, **kwargs: Any) -> Any:
        # case_detail has read the case in its snapshot; the erasure starts now, and is
        # given the time to finish before the read writes its audit row.
        found = await read_consent(*args, **kwargs)
        erasing.append(asyncio.create_task(_erase(db, resident_id)))
        waited.append(await _waiting_on_the_trail(db, "SHARE ROW EXCLUSIVE", erasing[0]))
        return found

    monkeypatch.setattr(cases_db, "current_consent", consent_then_an_erasure)
    async with db.unit_of_work() as uow:
        shown = await cases.case_detail(uow, db.caller(), case_id)
    await asyncio.wait_for(erasing[0], PATIENCE_S)

    # The read showed the case as it stood when it began (the erasure had not committed),
    # and its row was written before the rewrite: the trail names her by tombstone only.
    assert shown.case["id"] == case_id
    assert await db.count("residents", "id = :id", id=resident_id) == 0
    assert await _rows_naming(db, resident_id, case_id) == []
    assert waited == [True]
    rewritten = await db.rows(
        "SELECT 1 FROM audit_log WHERE operation = 'case_detail' AND case_ids ? :hash",
        hash=shared_erasure.tombstone(db.settings.resident_key_secret.get_secret_value(), case_id),
    )
    assert len(rewritten) == 1


async def test_a_read_begun_while_an_erasure_is_under_way_waits_and_then_sees_it(
    referrals_database: ReferralsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = referrals_database
    resident_id, case_id = await _referred(db)
    rewritten, go_on = asyncio.Event(), asyncio.Event()
    record_tombstones = shared_erasure.record_tombstones

    async def rewritten_then_held(*args: Any, **kwargs: Any) -> None:
        # The erasure has rewritten the trail and holds it, not yet committed.
        await record_tombstones(*args, **kwargs)
        rewritten.set()
        await go_on.wait()

    monkeypatch.setattr(shared_erasure, "record_tombstones", rewritten_then_held)
    erasing = asyncio.create_task(_erase(db, resident_id))
    await asyncio.wait_for(rewritten.wait(), PATIENCE_S)

    async def read() -> None:
        async with db.unit_of_work() as uow:
            await cases.case_detail(uow, db.caller(), case_id)

    reading = asyncio.create_task(read())
    waited = await _waiting_on_the_trail(db, "ROW EXCLUSIVE", reading)
    go_on.set()
    await asyncio.wait_for(erasing, PATIENCE_S)

    # The read waited for the erasure, and its snapshot, taken after, has no such case.
    assert waited
    with pytest.raises(NotFound):
        await asyncio.wait_for(reading, PATIENCE_S)
    assert await _rows_naming(db, resident_id, case_id) == []

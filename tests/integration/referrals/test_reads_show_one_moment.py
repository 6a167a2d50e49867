"""What a caseworker is shown is one moment's state, on a real PostgreSQL: a read made of
several statements (a case, then its needs, its offers, its timeline) runs in one snapshot
(``UnitOfWork.snapshot``), so a change committed between two of its statements shows in
all of them or in none. Under READ COMMITTED each statement sees what committed before it:
an end-to-end run once showed a need unroutable on a case still ready for routing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from services.referrals.adapters import cases as cases_db
from services.referrals.service_layer import cases, intake
from shared.events.envelope import utc_now
from shared.events.payloads import CaseUnroutable, RiskAssessed
from shared.vocabulary import Need
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import finding, new_referral

pytestmark = pytest.mark.integration

DEBT = Need.MONEY_AND_DEBT


async def _case_ready_for_routing(db: ReferralsDatabase) -> str:
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), new_referral(needs=(DEBT,)))
    assert receipt.case_id is not None
    assessed = RiskAssessed(
        case_id=receipt.case_id, level="high", score=70, ruleset_version="v", assessed_at=utc_now()
    )
    async with db.applying(assessed, subject=receipt.case_id) as uow:
        await cases.record_risk_assessment(uow, receipt.case_id, finding())
    return receipt.case_id


async def _partners_find_it_unroutable(db: ReferralsDatabase, case_id: str) -> None:
    """Partners' report, applied as its handler applies it: the need and the case move to
    unroutable in one transaction."""
    report = CaseUnroutable(
        case_id=case_id, needs=[DEBT], reasons=["no service covers money_and_debt"], at=utc_now()
    )
    async with db.applying(report, subject=case_id) as uow:
        await cases.record_unroutable(
            uow,
            cases.Unroutable(
                case_id, ("no service covers money_and_debt",), utc_now() + timedelta(seconds=1)
            ),
        )


def _committed_between_reads(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[], Awaitable[None]]
) -> None:
    """Commit ``change`` from another connection once ``case_detail`` has read the case and
    before it reads the needs (its consent is read in between)."""
    read_consent = cases_db.current_consent

    async def consent_then_change(*args: Any, **kwargs: Any) -> Any:
        found = await read_consent(*args, **kwargs)
        await change()
        return found

    monkeypatch.setattr(cases_db, "current_consent", consent_then_change)


async def test_a_case_and_its_needs_are_shown_as_they_stood_at_one_moment(
    referrals_database: ReferralsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = referrals_database
    case_id = await _case_ready_for_routing(db)
    _committed_between_reads(monkeypatch, lambda: _partners_find_it_unroutable(db, case_id))

    async with db.unit_of_work() as uow:
        shown = await cases.case_detail(uow, db.caller(), case_id)

    # The read began before partners' report committed: the case and its need as they were.
    assert shown.case["status"] == "ready_for_routing"
    assert [need["status"] for need in shown.needs] == ["routing"]
    # The report did commit meanwhile, and the next read shows all of it.
    monkeypatch.undo()
    async with db.unit_of_work() as uow:
        after = await cases.case_detail(uow, db.caller(), case_id)
    assert after.case["status"] == "unroutable"
    assert [need["status"] for need in after.needs] == ["unroutable"]


async def _status(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT status FROM cases WHERE id = :id", id=case_id)
    return str(row["status"])


async def _set_status(db: ReferralsDatabase, case_id: str, status: str) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE cases SET status = :s WHERE id = :id"), {"s": status, "id": case_id}
        )


async def test_a_snapshot_does_not_see_what_commits_during_it_and_a_transaction_does(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _case_ready_for_routing(db)
    read = text("SELECT status FROM cases WHERE id = :id")

    async with db.unit_of_work() as uow, uow.snapshot() as session:
        first = (await session.execute(read, {"id": case_id})).scalar_one()
        await _set_status(db, case_id, "closed")
        again = (await session.execute(read, {"id": case_id})).scalar_one()
    assert (first, again) == ("ready_for_routing", "ready_for_routing")

    # The same reads in a plain transaction see the change: what the snapshot is for.
    async with db.unit_of_work() as uow, uow.transaction() as session:
        first = (await session.execute(read, {"id": case_id})).scalar_one()
        await _set_status(db, case_id, "ready_for_routing")
        again = (await session.execute(read, {"id": case_id})).scalar_one()
    assert (first, again) == ("closed", "ready_for_routing")
    assert await _status(db, case_id) == "ready_for_routing"


async def test_a_connection_back_from_a_snapshot_is_read_committed_again(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    seen = text("SELECT pg_backend_pid(), current_setting('transaction_isolation')")
    async with db.unit_of_work() as uow, uow.snapshot() as session:
        snapshot = tuple((await session.execute(seen)).one())
    async with db.unit_of_work() as uow, uow.transaction() as session:
        after = tuple((await session.execute(seen)).one())
    # The pool hands back the connection returned last: the same one, its level reset.
    assert snapshot[1] == "repeatable read"
    assert after == (snapshot[0], "read committed")


async def test_a_read_made_before_it_does_not_keep_a_snapshot_from_being_one(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _case_ready_for_routing(db)
    read = text("SELECT status FROM cases WHERE id = :id")
    async with db.unit_of_work() as uow:
        # As a web page looks up its session first, outside any use case's transaction.
        before = (await uow.session.execute(read, {"id": case_id})).scalar_one()
        assert before == "ready_for_routing"
        async with uow.snapshot() as session:
            isolation = text("SELECT current_setting('transaction_isolation')")
            assert (await session.execute(isolation)).scalar_one() == "repeatable read"

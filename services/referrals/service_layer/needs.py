"""The needs of a case, one by one: steps that run inside a caller's transaction (a case use
case in ``cases.py`` or intake), with the case row locked by that caller.

A need moves by the council's decisions about the whole case (``decide``, ``send``) and by
partners' events about it (``report``); after either, ``settle`` derives the case's status
from its needs (``domain/needs.py``, ``case_status``) and, when it changed, stores it with
its timestamp, a timeline entry and the events it means, in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from services.referrals.adapters import Row
from services.referrals.adapters import cases as cases_db
from services.referrals.adapters import needs as needs_db
from services.referrals.domain.actors import Actor
from services.referrals.domain.lifecycle import OPEN_STATUSES, TERMINAL_STATUSES, CaseStatus
from services.referrals.domain.needs import (
    NOT_SENT,
    OPEN,
    WITH_PARTNERS,
    NeedState,
    NeedStatus,
    PartnerEvent,
    Report,
    after_case_decision,
    after_partner_event,
    case_status,
    initial_status,
)
from services.referrals.domain.sharing import case_outcome
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.events.payloads import CaseClosed, CaseStatusChanged
from shared.vocabulary import Outcome

log = logging.getLogger(__name__)

# Statuses a need leaves its offer behind in: partners no longer hold it under one.
_WITHOUT_OFFER = frozenset(
    {
        NeedStatus.RECEIVED,
        NeedStatus.ASSESSED,
        NeedStatus.WAITING_FOR_CONSENT,
        NeedStatus.ROUTING,
        NeedStatus.WAITING_FOR_CAPACITY,
        NeedStatus.UNROUTABLE,
        NeedStatus.CLOSED,
        NeedStatus.WITHDRAWN,
    }
)


async def current(
    uow: ReferralsUnitOfWork,
    case: Row,
    *,
    now: datetime,
    joined: Collection[str] = (),
) -> dict[str, Row]:
    """The rows of the case's current needs, in the case's order. A need that joined the
    case (a new referral, a merge, consent for more needs) gets its row, starting where the
    case is; a need no longer on the case is withdrawn (its row kept for the record).

    A need that left the case (withdrawn: an undone merge took it away) and is wanted on it
    again — named in ``joined`` by the caller that just added it, on an open case — starts
    again where the case is, as a new need would: no offer, no partners' event, no
    outcome. Only the caller knows a need joined: a case row read before its withdrawal in
    the same transaction still looks open while its needs are withdrawn."""
    session = uow.session
    rows = {row["need"]: row for row in await needs_db.needs_of(session, case["id"])}
    wanted: list[str] = list(case["needs"])
    start = initial_status(CaseStatus(case["status"]))
    missing = {need: start.value for need in wanted if need not in rows}
    dropped = [
        need
        for need, row in rows.items()
        if need not in wanted and NeedStatus(row["status"]) in OPEN
    ]
    again = [
        need
        for need in wanted
        if need in joined
        and need in rows
        and rows[need]["status"] == NeedStatus.WITHDRAWN
        and CaseStatus(case["status"]) in OPEN_STATUSES
    ]
    for need in dropped:
        await _store(uow, case["id"], rows[need], NeedStatus.WITHDRAWN, at=now, offer_id=None)
    for need in again:
        await _store(
            uow,
            case["id"],
            rows[need],
            start,
            at=now,
            offer_id=None,
            last_event_at=None,
            outcome=None,
            unroutable_reason=None,
            withdrawn_at=None,
        )
    if missing or dropped or again:
        await needs_db.add_needs(session, case["id"], missing, now=now)
        rows = {row["need"]: row for row in await needs_db.needs_of(session, case["id"])}
    return {need: rows[need] for need in wanted}


async def start(uow: ReferralsUnitOfWork, case: Row, *, now: datetime) -> None:
    """The need rows of a case opened just now, which has none yet: one per need, starting
    where the case is (``current`` without reading what cannot be there)."""
    first = initial_status(CaseStatus(case["status"])).value
    await needs_db.add_needs(uow.session, case["id"], dict.fromkeys(case["needs"], first), now=now)


async def _store(
    uow: ReferralsUnitOfWork,
    case_id: str,
    row: Row,
    status: NeedStatus,
    *,
    at: datetime,
    **values: Any,
) -> Row:
    """A need's new status (its milestone at ``at``) and what goes with it: the row after."""
    if status.value != row["status"]:
        values.update({"status": status.value, "status_at": at, f"{status.value}_at": at})
        if status in _WITHOUT_OFFER:
            values.setdefault("offer_id", None)
    if not values:
        return row
    values["updated_at"] = at
    await needs_db.update_need(uow.session, case_id, row["need"], **values)
    return cast(Row, {**row, **values})


async def decide(
    uow: ReferralsUnitOfWork,
    case: Row,
    target: CaseStatus,
    *,
    now: datetime,
    held: Collection[str] = (),
) -> dict[str, Row]:
    """A decision about the whole case (assessed, consent sought, routed, closed, withdrawn)
    applied to each of its needs (``after_case_decision``): their rows after, for
    ``settle``."""
    rows = await current(uow, case, now=now)
    for need, row in rows.items():
        status = after_case_decision(NeedStatus(row["status"]), target, held=need in held)
        rows[need] = await _store(uow, case["id"], row, status, at=now)
    return rows


async def stop_with_partners(uow: ReferralsUnitOfWork, case: Row, *, now: datetime) -> None:
    """Sharing stopped: every need partners hold (routing, offered, accepted, unroutable…)
    waits for consent again. Needs not sent and final needs stay as they are."""
    for row in (await current(uow, case, now=now)).values():
        if NeedStatus(row["status"]) in WITH_PARTNERS:
            await _store(uow, case["id"], row, NeedStatus.WAITING_FOR_CONSENT, at=now)


async def send(uow: ReferralsUnitOfWork, case: Row, needs: Iterable[str], *, now: datetime) -> None:
    """The packet with ``needs`` goes to partners: those not sent yet are routing."""
    rows = await current(uow, case, now=now)
    for need in needs:
        row = rows.get(need)
        if row is not None and NeedStatus(row["status"]) in NOT_SENT:
            await _store(uow, case["id"], row, NeedStatus.ROUTING, at=now)


def _state(row: Row) -> NeedState:
    return NeedState(
        status=NeedStatus(row["status"]),
        offer_id=row["offer_id"],
        last_event_at=row["last_event_at"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
    )


async def report(
    uow: ReferralsUnitOfWork,
    case: Row,
    need: str,
    event: PartnerEvent,
    **values: Any,
) -> bool:
    """A partners' event about one need of the case (``after_partner_event``): whether it
    moved the need. An event that does not (older, about an offer no longer the need's)
    still fills in a milestone the need has not recorded."""
    row = (await current(uow, case, now=event.at)).get(need)
    if row is None:
        return False  # not a need of this case (any more): the offer mirror keeps it
    before = _state(row)
    after = after_partner_event(before, event)
    if after == before:
        await late(uow, case, need, event)
        return False
    await _store(
        uow,
        case["id"],
        row,
        after.status,
        at=event.at,
        offer_id=after.offer_id,
        last_event_at=after.last_event_at,
        outcome=after.outcome.value if after.outcome else None,
        **values,
    )
    return after.status.value != row["status"]


_MILESTONES = {
    Report.OFFERED: NeedStatus.OFFERED,
    Report.ACCEPTED: NeedStatus.ACCEPTED,
    Report.IN_PROGRESS: NeedStatus.IN_PROGRESS,
}


async def late(uow: ReferralsUnitOfWork, case: Row, need: str, event: PartnerEvent) -> None:
    """A report that moves nothing (it is older than what is known) still tells when the
    need was offered, accepted or worked on, if the need has no such milestone yet."""
    milestone = _MILESTONES.get(event.report)
    if milestone is not None and need in case["needs"]:
        await needs_db.fill_milestone(uow.session, case["id"], need, milestone.value, event.at)


async def settle(
    uow: ReferralsUnitOfWork,
    case: Row,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    outcome: Outcome | None = None,
    without_needs: CaseStatus | None = None,
    rows: Mapping[str, Row] | None = None,
) -> Row:
    """The case's status derived from its needs (``rows``: their rows as this transaction
    has just left them, else read); when it changed: the status and its timestamp, a
    timeline entry everyone with access may see, ``case status changed`` and, for a closed
    or withdrawn case, ``case closed`` (with the best of its needs' outcomes when no
    outcome is given)."""
    session = uow.session
    if rows is None:
        rows = await current(uow, case, now=now)
    previous = CaseStatus(case["status"])
    derived = case_status(
        [NeedStatus(row["status"]) for row in rows.values()],
        without_needs=without_needs or previous,
    )
    if derived is previous:
        return case
    if derived is CaseStatus.CLOSED and outcome is None:
        outcome = case_outcome(Outcome(row["outcome"]) for row in rows.values() if row["outcome"])
        reason = reason or "every need has an outcome"
    values: dict[str, Any] = {
        "status": derived.value,
        f"{derived.value}_at": now,
        "updated_at": now,
        "status_reason": reason,
    }
    if outcome is not None:
        values["outcome"] = outcome.value
    updated = await cases_db.update_case(session, case["id"], **values)
    await cases_db.add_timeline(
        session,
        case["id"],
        actor,
        f"status changed to {derived.value}",
        now=now,
        detail=reason,
        status_from=previous.value,
        status_to=derived.value,
        referrer_visible=True,
    )
    await uow.outbox.add(
        session,
        CaseStatusChanged(
            case_id=case["id"],
            council=case["council"],
            previous=previous.value,
            status=derived.value,
            reason=reason,
            changed_at=now,
        ),
        subject=case["id"],
    )
    if derived in TERMINAL_STATUSES:
        await uow.outbox.add(
            session,
            CaseClosed(
                case_id=case["id"],
                council=case["council"],
                outcome=outcome,
                withdrawn=derived is CaseStatus.WITHDRAWN,
                closed_at=now,
            ),
            subject=case["id"],
        )
    return updated

"""Gaps in service, said once: when a need turns unroutable in a council's area, or waits
for a place longer than ``UPSTREAM_GAP_WAITING_WORKING_DAYS``, a gap episode opens and
``gap.detected`` is written (counts and areas, never who). It stays open, and silent, while
any need is in it; the worker's sweep closes it when none is, so a gap that comes back is a
new episode and is said again. The rules are ``domain/gaps.py``."""

from __future__ import annotations

from datetime import datetime

from services.partners.adapters import gaps as store
from services.partners.domain.gaps import GapKey, NeedInGap, gaps, summarise
from services.partners.domain.offers import WorkingWeek
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.working_time import deadline_rules
from services.partners.settings import PartnersSettings
from shared.events.payloads import GapDetected, GapReason
from shared.vocabulary import Need


def _threshold(settings: PartnersSettings) -> tuple[float, WorkingWeek]:
    """How long is too long to wait, in working hours, and the working week it counts."""
    week = deadline_rules(settings).week
    opens, closes = settings.working_day_start, settings.working_day_end
    day = (closes.hour * 60 + closes.minute - opens.hour * 60 - opens.minute) / 60
    return settings.gap_waiting_working_days * day, week


async def _say(uow: PartnersUnitOfWork, key: GapKey, needs: list[NeedInGap], now: datetime) -> bool:
    """Open the gap's episode and write its event, unless an episode is open already."""
    gap_id = uow.new_id()
    if not await store.open_gap(uow.session, gap_id, key, residents=len(needs), at=now):
        return False
    summary = summarise(key, needs, now)
    await uow.outbox.add(
        uow.session,
        GapDetected(
            gap_id=gap_id,
            council=key.council,
            need=key.need,
            reason=key.reason,
            detail=summary.detail,
            postcode_districts=summary.postcode_districts,
            languages=summary.languages,
            age_bands=summary.age_bands,
            residents_waiting=summary.residents_waiting,
            waiting_since=summary.waiting_since,
            longest_wait_hours=summary.longest_wait_hours,
            detected_at=now,
        ),
        subject=gap_id,
    )
    return True


async def note_unroutable(
    uow: PartnersUnitOfWork, council: str, need: Need, *, now: datetime
) -> bool:
    """Inside the caller's transaction, as a need turns unroutable: the council's gap for
    that need opens (and is said) unless it is open already."""
    waited, week = _threshold(uow.settings)
    found = gaps(
        await store.needs_in_gaps(uow.session, council=council, need=need.value), now, waited, week
    )
    said = False
    for reason in (GapReason.UNROUTABLE, GapReason.NO_AGREEMENT):  # no agreement in force
        key = GapKey(council, need, reason)
        if key in found and await _say(uow, key, found[key], now):
            said = True
    return said


async def detect_gaps(uow: PartnersUnitOfWork) -> int:
    """The worker's sweep: gaps that opened (needs waiting past the threshold; unroutable
    ones missed) are said once, and gaps no need is in any more are closed. How many were
    said."""
    async with uow.transaction():
        now = uow.now()
        waited, week = _threshold(uow.settings)
        found = gaps(await store.needs_in_gaps(uow.session), now, waited, week)
        open_now = await store.open_gaps(uow.session)
        await store.close_gaps(
            uow.session, [gap_id for key, gap_id in open_now.items() if key not in found], now
        )
        said = 0
        for key in sorted(found):
            if key not in open_now and await _say(uow, key, found[key], now):
                said += 1
        return said

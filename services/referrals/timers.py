"""What the referrals worker sweeps: consents that have expired, which stop routing just as
a withdrawal does (partners lose access)."""

from __future__ import annotations

from sqlalchemy import select, update

from services.referrals.adapters.tables import consents
from services.referrals.cases import REFERRALS_SERVICE, current_consent, lock_case, withdraw_consent
from shared.events.envelope import utc_now
from shared.service import Timer, TimerContext


async def expire_consents(context: TimerContext, *, limit: int = 100) -> int:
    now = utc_now()
    async with context.sessions() as session, session.begin():
        expired = (
            (
                await session.execute(
                    select(consents)
                    .where(consents.c.expires_at <= now, consents.c.withdrawn_at.is_(None))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .mappings()
            .all()
        )
        for consent in expired:
            case = await lock_case(session, consent["case_id"])
            current = await current_consent(session, consent["case_id"])
            if case is None or current is None or current["id"] != consent["id"]:
                # Superseded by a newer consent: it no longer governs anything.
                await session.execute(
                    update(consents)
                    .where(consents.c.id == consent["id"])
                    .values(withdrawn_at=now, withdrawn_by="superseded")
                )
                continue
            await withdraw_consent(
                session,
                context.outbox,
                case,
                consent,
                actor=REFERRALS_SERVICE,
                reason="the resident's consent expired",
                now=now,
            )
    return len(expired)


TIMERS = [Timer("consent expiry", expire_consents, every_seconds=30.0)]

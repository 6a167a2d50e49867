"""Which events are bulk work: those of outreach cases, opened for residents a feed flagged
(``origin = 'flag'``). A case is one or the other for its whole life, so its events stay on
one topic, in order (``shared/messaging/outbox.py``, bulk lanes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.tables import cases
from shared.db import fetch_all


def _is_uuid(key: str) -> bool:
    try:
        uuid.UUID(key)
    except ValueError:
        return False
    return True


OUTREACH_ORIGIN = "flag"  # the origin of an outreach case

# Built once: asked for every event written.
_OUTREACH = select(cases.c.id).where(
    cases.c.id.in_(bindparam("ids", expanding=True)), cases.c.origin == OUTREACH_ORIGIN
)


async def outreach_cases(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Of these event keys, the ids of outreach cases (one primary-key probe each)."""
    ids = sorted({key for key in keys if _is_uuid(key)})
    if not ids:
        return set()
    rows = await fetch_all(session, _OUTREACH, {"ids": ids})
    return {str(row["id"]) for row in rows}

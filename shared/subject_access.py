"""What every service needs to answer a subject access request (UK GDPR Article 15): its
records as plain JSON, and its audit trail of reads about the resident.

The referrals service owns the request and assembles the export
(``services/referrals/service_layer/subject_access.py``); partners and risk answer it
from what they hold (each one's ``service_layer/subject_access.py``). The events are
``SubjectAccessRequested`` and ``…SubjectAccessContributed`` (``shared/events/payloads.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Table, Text, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import fetch_all
from shared.events.payloads import AccessRead

REFERRALS, PARTNERS, RISK = "referrals", "partners", "risk"  # who contributes
# An answer is sent in parts of at most about this many bytes of JSON: well under the
# broker's message size limit (Kafka's default: 1 MiB), whatever a resident's history.
PART_BYTES = 256 * 1024

Sections = dict[str, list[dict[str, Any]]]
PURPOSE = "subject access (UK GDPR Article 15)"


def plain(value: Any) -> Any:
    """A value as JSON holds it: times and dates in ISO 8601, ids as text, lists and
    mappings all the way down."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def records(rows: Iterable[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """Rows as plain JSON records, every column as held."""
    return [plain(dict(row)) for row in rows]


def in_parts(
    sections: Sections, reads: list[AccessRead], *, budget: int = PART_BYTES
) -> list[tuple[Sections, list[AccessRead]]]:
    """An answer split into parts of about ``budget`` bytes of JSON each, records and reads in
    their order (a record larger than the budget goes alone). Every part names every kind
    of record, empty where it holds none; there is always at least one part."""
    parts: list[tuple[Sections, list[AccessRead]]] = []
    current: tuple[Sections, list[AccessRead]] = ({kind: [] for kind in sections}, [])
    used = 0

    def room_for(size: int) -> None:
        nonlocal current, used
        if used and used + size > budget:
            parts.append(current)
            current, used = ({kind: [] for kind in sections}, []), 0
        used += size

    for kind, items in sections.items():
        for item in items:
            room_for(len(json.dumps(item, default=str)))
            current[0][kind].append(item)
    for read in reads:
        room_for(len(read.model_dump_json()))
        current[1].append(read)
    parts.append(current)
    return parts


async def reads_about(
    session: AsyncSession,
    table: Table,
    *,
    resident_ids: Iterable[str] = (),
    case_ids: Iterable[str] = (),
) -> list[AccessRead]:
    """Every row of a service's audit trail (``shared/audit.py``) that names one of the
    residents or cases, oldest first: who has seen this resident's data. A row that named
    other residents too (a queue's page) names only these here: an export tells nobody
    about anyone else."""
    residents, cases = sorted(set(resident_ids)), sorted(set(case_ids))
    conditions = []
    if residents:
        conditions.append(table.c.resident_ids.has_any(array(residents, type_=Text)))
    if cases:
        conditions.append(table.c.case_ids.has_any(array(cases, type_=Text)))
    if not conditions:
        return []
    rows = await fetch_all(session, select(table).where(or_(*conditions)).order_by(table.c.id))
    return [
        AccessRead.model_validate(
            {k: v for k, v in dict(row).items() if k != "id"}
            | {
                "resident_ids": [r for r in row["resident_ids"] if r in residents],
                "case_ids": [c for c in row["case_ids"] if c in cases],
            }
        )
        for row in rows
    ]

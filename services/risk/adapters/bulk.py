"""Statements over a whole batch at once (``COPY``, arrays) that SQLAlchemy would build row
by row, on the session's asyncpg connection (``shared.db.driver``), in its transaction, and
the ids of the rows they add."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

# A batch of fewer rows than this goes in with one INSERT of arrays: a COPY costs more round
# trips (asyncpg first reads the table's columns; a savepoint around it), paid back only over
# a batch.
COPY_FROM = 100


async def copy_unless_held(
    db: Any, table: str, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> bool:
    """``COPY`` the records into the table, all or none: False (and nothing copied) if one
    of them is held already, or repeated, under a unique index. Then the caller stores them
    the slower way, skipping what is held (``INSERT … ON CONFLICT DO NOTHING``). A first
    import holds nothing yet, so it takes the fast way."""
    await db.execute("SAVEPOINT risk_bulk_copy")
    try:
        await db.copy_records_to_table(table, columns=columns, records=records)
    except asyncpg.UniqueViolationError:
        await db.execute("ROLLBACK TO SAVEPOINT risk_bulk_copy")
        return False
    await db.execute("RELEASE SAVEPOINT risk_bulk_copy")
    return True


def time_ordered_id() -> str:
    """A UUID version 7 (RFC 9562): the time in milliseconds, then random bits. Rows added
    together sit together in an index on it, which a bulk insert into a large table feels."""
    return time_ordered_ids(1)[0]


def time_ordered_ids(count: int) -> list[str]:
    """``count`` version 7 UUIDs of this millisecond, their random bits drawn at once."""
    when = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    prefix = f"{when[:8]}-{when[8:]}-7"
    bits = os.urandom(10 * count).hex()
    variant = _VARIANT
    return [
        f"{prefix}{bits[at : at + 3]}-{variant[bits[at + 3]]}{bits[at + 4 : at + 7]}-"
        f"{bits[at + 7 : at + 19]}"
        for at in range(0, 20 * count, 20)
    ]


# The variant's two high bits, 10, over a random hex digit's other two.
_VARIANT = {f"{n:x}": f"{(n & 0b11) | 0b1000:x}" for n in range(16)}

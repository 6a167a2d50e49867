"""The clock the use cases read (``UnitOfWork.now``): the real one, or in development only a
clock a test can set from outside the processes (``UPSTREAM_CLOCK_FILE``).

The file holds one ISO 8601 instant with its offset (``2026-11-13T16:00:00+00:00``). The
clock reads that instant at the moment the file was written and runs on in real time from
there, so timers and deadlines behave as they would on that day; writing the file again
moves the clock (back or forward). A missing or empty file is the real clock. Every process
of the stack reads the same file, so a test moves them all at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.events.envelope import utc_now

Clock = Callable[[], datetime]
LONDON = ZoneInfo("Europe/London")


def london_today() -> date:
    """Today where the councils are, whatever the server's zone: a day a council writes (a
    signal observed today, a date of birth) is a London day, and a server in UTC is an hour
    behind it all summer, a server elsewhere more (``date.today()`` is the server's)."""
    return datetime.now(LONDON).date()


class FileClock:
    """The instant in ``path``, running on from when the file was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        now = utc_now()
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return now
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            offset = self._read(stat.st_mtime_ns)
            if offset is None:
                # Caught mid-write (a writer that does not replace the file whole): keep the
                # clock as it was and read the file again next time.
                return now + self._offset
            self._offset, self._seen = offset, seen
        return now + self._offset

    def _read(self, written_ns: int) -> timedelta | None:
        """The offset the file says; None while it cannot be read as an instant."""
        text = self.path.read_text().strip()
        if not text:
            return timedelta(0)
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            return None
        if instant.tzinfo is None:
            raise ValueError(f"{self.path}: the clock's instant needs an offset, e.g. +00:00")
        written = datetime.fromtimestamp(written_ns / 1e9, tz=instant.tzinfo)
        return instant - written


@lru_cache(maxsize=8)
def clock_from(path: Path | None) -> Clock:
    """The real clock, or (``path`` given: development only, see the settings) the file's;
    one per path in a process, so the file is read again only when it changes."""
    return utc_now if path is None else FileClock(path)

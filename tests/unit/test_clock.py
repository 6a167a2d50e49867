"""The clock a test can set from outside the processes (development only): the instant in
the file, running on in real time from when the file was written."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.clock import FileClock, clock_from
from shared.events.envelope import utc_now


def written(path: Path, text: str, seconds_ago: float = 0) -> None:
    path.write_text(text)
    at = utc_now().timestamp() - seconds_ago
    os.utime(path, (at, at))


def test_without_a_file_the_clock_is_the_real_one(tmp_path: Path) -> None:
    assert clock_from(None) is utc_now
    clock = FileClock(tmp_path / "clock")
    before = utc_now()
    assert before <= clock() <= utc_now()
    written(tmp_path / "clock", "")
    assert before <= clock() <= utc_now()


def test_the_clock_runs_on_from_the_instant_the_file_gives(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    friday = datetime(2026, 11, 13, 16, 0, tzinfo=UTC)
    written(path, friday.isoformat(), seconds_ago=90)  # written a minute and a half ago
    clock = FileClock(path)
    now = clock()
    assert friday + timedelta(seconds=89) < now < friday + timedelta(seconds=95)
    assert now.utcoffset() == timedelta(0)
    # Written again (to the Monday after): the clock moves there.
    written(path, "2026-11-16T16:10:00+00:00")
    assert (
        datetime(2026, 11, 16, 16, 10, tzinfo=UTC)
        <= clock()
        < datetime(2026, 11, 16, 16, 11, tzinfo=UTC)
    )
    path.unlink()  # gone: the real clock again
    assert abs(clock() - utc_now()) < timedelta(seconds=5)


def test_an_instant_without_an_offset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    written(path, "2026-11-13T16:00:00")
    with pytest.raises(ValueError, match="needs an offset"):
        FileClock(path)()


def test_half_an_instant_read_mid_write_keeps_the_clock_where_it_was(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    friday = datetime(2026, 11, 13, 16, 0, tzinfo=UTC)
    written(path, friday.isoformat())
    clock = FileClock(path)
    assert clock() < friday + timedelta(seconds=5)
    written(path, "2026-11-1")  # a writer caught halfway through the Monday
    assert friday <= clock() < friday + timedelta(seconds=5)  # not the real clock, not Monday
    written(path, "2026-11-16T16:10:00+00:00")  # the write completes
    monday = datetime(2026, 11, 16, 16, 10, tzinfo=UTC)
    assert monday <= clock() < monday + timedelta(seconds=5)

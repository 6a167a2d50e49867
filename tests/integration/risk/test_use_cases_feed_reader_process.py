"""A large file is read in a reader process of its own (``reader_process.py``) while the
API's process stores it: the same report, the same rows stored and the same flags as when
it is read in the API's process, on real migrated databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from services.risk.service_layer import signals
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from shared.db import create_engine, session_factory
from shared.errors import Invalid
from shared.events.catalogue import CATALOGUE
from shared.identity import unseal_identity
from shared.messaging.outbox import Outbox
from tests.conftest import MakeDatabase
from tests.support.signal_feed import HEADER, NEWHAM, write_feed

pytestmark = pytest.mark.integration

OPERATOR = signals.Submitter("operator", "op", own_council_only=False)


def broken_rows() -> str:
    """Rows every check refuses or the reader must join, among the good ones."""
    return (
        "\n"  # a blank line
        "rent_arrears,E09000025,Amina,Okafor,1984-03-02,E15 4HT,feed,2026-13-01,3,420,,,,,\n"
        'job_loss,E09000025,"Jo\nAnne",Smith,1990-01-01,E15 4HT,feed,2026-11-01,,,,,,,\n'
        'job_loss,E09000025,"never closed,Smith,1990-01-01,E15 4HT,feed,2026-11-01,,,,,,,\n'
        "rent_arrears,E09000025,Amina,Okafor,1984-03-02,not a postcode,feed,2026-11-01,3,1,,,,,\n"
        "rent_arrears,E09000025,,Okafor,1984-03-02,E15 4HT,feed,2026-11-01,-1,1,,,,,\n"
        "job_loss,E0900002X,Tom,Ek,1990-01-01,E15 4HT,feed,2026-11-01,,,,,,,\n"
    )


def feed_file(tmp_path: Path) -> bytes:
    path = tmp_path / "feed.csv"
    write_feed(path, 400, council=NEWHAM, seed=7)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # The broken rows sit in the middle of the file, so they cross a batch's end.
    return ("\ufeff" + "".join(lines[:200]) + broken_rows() + "".join(lines[200:])).encode()


async def chunks_of(data: bytes, size: int = 777) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def imported(url: str, data: bytes, *, reader_process: bool) -> dict[str, Any]:
    """Import ``data`` as the API does; the report, and what the database holds after."""
    settings = RiskSettings(
        database_url=SecretStr(url),
        import_batch_size=50,
        import_reader_process_from_bytes=0 if reader_process else 1 << 30,
    )
    engine = create_engine(url, pool_size=2)
    try:
        async with session_factory(engine)() as session:
            uow = RiskUnitOfWork(
                session=session,
                outbox=Outbox(CATALOGUE, source=settings.source),
                settings=settings,
                rulesets=ActiveRuleset(),
            )
            outcome = await signals.import_file(uow, OPERATOR, chunks_of(data), "csv")
        async with engine.connect() as connection:

            async def column(query: str) -> list[Any]:
                return sorted((await connection.execute(text(query))).scalars())

            held: dict[str, Any] = {
                "fingerprints": await column("SELECT fingerprint FROM signals"),
                "keys": await column("SELECT key FROM profile_keys"),
                "profiles": len(await column("SELECT id::text FROM profiles")),
                "flags": await column(
                    "SELECT level || ' ' || score || ' ' || reasons::text FROM assessments"
                ),
                "events": await column(
                    "SELECT envelope->'data'->>'resident_key' || ' ' || "
                    "(envelope->'data'->>'score') FROM outbox"
                ),
                "sealed": await column("SELECT envelope->'data'->>'sealed_identity' FROM outbox"),
            }
    finally:
        await engine.dispose()
    secret = settings.resident_key_secret.get_secret_value()
    held["sealed"] = sorted(str(sorted(unseal_identity(secret, s).items())) for s in held["sealed"])
    report = asdict(outcome) | {"import_id": None}
    return {"report": report, **held}


async def test_a_file_read_in_a_reader_process_is_imported_as_one_read_here(
    service_database: MakeDatabase, tmp_path: Path
) -> None:
    data = feed_file(tmp_path)
    here = await imported(await service_database("risk"), data, reader_process=False)
    elsewhere = await imported(await service_database("risk"), data, reader_process=True)
    assert elsewhere == here
    report = here["report"]
    assert report["rows_read"] == 406 and report["rows_rejected"] == 5
    assert report["rows_read"] == (
        report["rows_stored"] + report["rows_duplicate"] + report["rows_rejected"]
    )
    assert report["lines_joined"] == 1 and report["lines_skipped"] == 2  # the header, a blank
    assert report["flagged"] > 0 and len(here["events"]) == report["flagged"]
    assert {e["field"] for e in report["errors"]} >= {"observed_on", "resident.postcode", "council"}


async def test_a_bad_header_read_in_a_reader_process_is_refused_as_one_read_here(
    service_database: MakeDatabase,
) -> None:
    url = await service_database("risk")
    data = (HEADER.strip() + ",type\n").encode() + b"job_loss" * 100
    for reader_process in (False, True):
        with pytest.raises(Invalid) as refused:
            await imported(url, data, reader_process=reader_process)
        assert refused.value.errors[0][0] == "header"

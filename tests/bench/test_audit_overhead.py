"""The cost of auditing a read (``make bench``; not part of ``make test``).

Upstream is the partners service's ``get_offer`` use case: read one offer with its packet,
write its audit row (``shared/audit.py``), and commit both. The baseline is the same read in
the same kind of transaction with no audit row, in the same run on the same PostgreSQL.
A second baseline adds a one-column INSERT to another table: any durable write. The three
alternate, so the machine's noise falls on all alike. ``audit_log`` is first filled
with 200,000 rows, so the row is added to a table (and indexes, one of them GIN) of a
realistic size. Printed, not asserted: read the figures side by side."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from services.partners.adapters import offers as store
from services.partners.bootstrap import SERVICE
from services.partners.service_layer import offers, placement
from services.partners.service_layer.placement import CaseToRoute
from shared.auth import OrganisationKind, Principal, Role
from shared.events.envelope import utc_now
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.bench.goals import Measured, show
from tests.conftest import MakeDatabase
from tests.integration.partners.conftest import PartnersApi, new_council, settings_for, work_on
from tests.support.services import serve

READS = 600
TRAIL_ROWS = 200_000
READERS, READS_EACH = 8, 100
# The audit row makes a read's transaction a durable write: its commit waits for the WAL to
# reach the disk. Goals: the row costs no more than any durable write (its columns and
# indexes add little), and under concurrent load reads keep at least half their rate.
GOAL_WRITE = 1.5
GOAL_SHARE = 0.5


async def _reads_per_second(read: Callable[[], Awaitable[float]]) -> float:
    async def reader() -> None:
        for _ in range(READS_EACH):
            await read()

    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(READERS)))
    return READERS * READS_EACH / (time.perf_counter() - started)


async def test_a_read_with_its_audit_row_beside_the_read_alone(
    service_database: MakeDatabase, request: pytest.FixtureRequest
) -> None:
    settings = settings_for(await service_database("partners"))
    async with serve(SERVICE, settings) as (client, engine):
        api = PartnersApi(client, engine, settings, new_council())
        await api.add_partner("pantry", capacity=5)
        partner_id = api.organizations["pantry"]
        case_id = str(uuid.uuid4())
        async with work_on(engine, settings) as uow:
            await placement.route_case(
                uow,
                CaseToRoute(
                    case_id=case_id,
                    council=api.council,
                    packet={
                        "first_name": "Amina",
                        "contact": {"method": "phone", "value": "07700 900123"},
                        "needs": ["food"],
                        "council": api.council,
                        "urgency": "high",
                        "summary": "Needs food.",
                    },
                    lawful_basis=LawfulBasis.CONSENT,
                    consent_kinds=[PartnerKind.ANY_VOLUNTARY],
                    ready_at=utc_now(),
                ),
            )
        async with engine.begin() as connection:
            offer_id = str(
                await connection.scalar(
                    text("SELECT id FROM offers WHERE case_id = :c"), {"c": case_id}
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO audit_log (at, subject, organisation, organisation_kind, roles,"
                    " operation, purpose, council, resident_ids, case_ids, data_categories)"
                    " SELECT now(), 'person-' || (n % 500), 'org-' || (n % 50), 'vcs',"
                    " '[\"partner\"]', 'get_offer', 'partner work', :council, '[]',"
                    " jsonb_build_array(gen_random_uuid()::text), '[\"identity\"]'"
                    " FROM generate_series(1, :rows) AS n"
                ),
                {"council": api.council, "rows": TRAIL_ROWS},
            )
            await connection.execute(text("ANALYZE audit_log"))
            await connection.execute(text("CREATE TABLE bench_probe (n int)"))
        reader = Principal(
            subject="person-at-pantry",
            organisation=partner_id,
            kind=OrganisationKind.VCS,
            roles=frozenset({Role.PARTNER}),
        )

        async def audited() -> float:
            async with work_on(engine, settings) as uow:
                started = time.perf_counter()
                await offers.get_offer(uow, reader, offer_id)
                return time.perf_counter() - started

        async def durable() -> float:
            """The same read, and a one-column INSERT elsewhere: any durable write."""
            async with work_on(engine, settings) as uow:
                started = time.perf_counter()
                async with uow.transaction():
                    assert await store.visible_to(uow.session, partner_id, offer_id)
                    await uow.session.execute(text("INSERT INTO bench_probe VALUES (1)"))
                return time.perf_counter() - started

        async def bare() -> float:
            async with work_on(engine, settings) as uow:
                started = time.perf_counter()
                async with uow.transaction():
                    assert await store.visible_to(uow.session, partner_id, offer_id)
                return time.perf_counter() - started

        for _ in range(50):  # warm the pool, the statement caches and the pages
            await audited()
            await bare()
            await durable()
        with_audit: list[float] = []
        without: list[float] = []
        written: list[float] = []
        for _ in range(READS):
            with_audit.append(await audited())
            without.append(await bare())
            written.append(await durable())
        # Many readers at once (a busy morning): PostgreSQL flushes the WAL of concurrent
        # commits together, so the audit row's durable commit is shared among them.
        audited_rate = await _reads_per_second(audited)
        bare_rate = await _reads_per_second(bare)
        async with engine.connect() as connection:
            rows = await connection.scalar(text("SELECT count(*) FROM audit_log"))

    # one row per audited read, none for the bare one
    assert rows == TRAIL_ROWS + 50 + READS + READERS * READS_EACH
    upstream, baseline = statistics.median(with_audit), statistics.median(without)
    any_write = statistics.median(written)
    p95 = statistics.quantiles(with_audit, n=20)[-1]
    p95_bare = statistics.quantiles(without, n=20)[-1]
    ratio = upstream / baseline
    show(
        request,
        f"Auditing a read: partners get_offer, {READS} reads each, audit_log of "
        f"{TRAIL_ROWS:,} rows",
        [
            Measured(
                "one read, median (ms)",
                f"{upstream * 1000:.2f}",
                f"{baseline * 1000:.2f} (no audit row)",
                f"{ratio:.2f}x",
                "",
                None,
            ),
            Measured(
                "one read, median (ms), beside any durable write",
                f"{upstream * 1000:.2f}",
                f"{any_write * 1000:.2f} (1-column INSERT)",
                f"{upstream / any_write:.2f}x",
                f"<= {GOAL_WRITE}x",
                upstream <= GOAL_WRITE * any_write,
            ),
            Measured(
                "one read, p95 (ms)",
                f"{p95 * 1000:.2f}",
                f"{p95_bare * 1000:.2f}",
                f"{p95 / p95_bare:.2f}x",
                "",
                None,
            ),
            Measured(
                f"reads a second, {READERS} readers at once",
                f"{audited_rate:,.0f}",
                f"{bare_rate:,.0f}",
                f"{audited_rate / bare_rate:.2f}",
                f">= {GOAL_SHARE:.0%} of the baseline",
                audited_rate >= GOAL_SHARE * bare_rate,
            ),
            Measured(
                "the audit row's cost, median (ms)",
                f"{(upstream - baseline) * 1000:.2f}",
                "",
                "",
                "",
                None,
            ),
        ],
    )

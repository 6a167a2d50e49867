"""Resident matching (``make bench``; not part of ``make test``): quality on generated
labelled pairs, and the matching time per referral on a real PostgreSQL holding 10,000 and
400,000 residents (loaded by COPY), beside a bare query (``SELECT 1``) in the same run.
Printed, not asserted for speed: this machine is noisy, so read the figures side by side."""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import replace

from sqlalchemy import text

from services.referrals.adapters.residents import key_columns, match_candidates
from services.referrals.domain.matching import blocking_keys, find_matches
from services.referrals.service_layer.resident_index import identity_of
from shared.db import create_engine, fetch_one, session_factory
from shared.identity import normalise_name
from tests.conftest import MakeDatabase
from tests.support.resident_pairs import RATES, Identity, People, evaluate

COUNCIL = "E09000025"
PROBES = 300


def test_matching_quality_on_generated_pairs() -> None:
    people = People(seed=12)
    matches = evaluate(people.matches(40_000))
    different = evaluate(people.non_matches(100_000))
    assert matches.total is not None and matches.attached is not None
    print("\n\nResident matching on generated pairs (seed 12)")
    print(
        f"  non-matching pairs: {different.non_matches:,}; attached automatically: "
        f"{different.false_attaches} (precision of automatic attach: "
        f"{_precision(matches, different):.4%}); listed as possible: {different.false_possible:,}"
    )
    print(f"  {'error pattern':<46} {'rate':>5} {'pairs':>6} {'found':>8} {'attached':>9}")
    for pattern, rate in RATES.items():
        total = matches.total.get(pattern.value, 0)
        print(
            f"  {pattern.value:<46} {rate:>5.0%} {total:>6,} "
            f"{matches.recall(pattern.value):>8.2%} "
            f"{matches.attached.get(pattern.value, 0) / total:>9.2%}"
        )
    assert different.false_attaches == 0
    assert all(matches.recall(p.value) >= 0.95 for p in RATES)


def _precision(matches, different) -> float:
    attached = sum((matches.attached or {}).values())
    return attached / (attached + different.false_attaches)


def _row(person: Identity) -> tuple:
    values = {
        "norm_given": normalise_name(person.given_name),
        "norm_family": normalise_name(person.family_name),
        "postcode": person.postcode,
        "phone": person.phone,
        "email": person.email,
    }
    keys = key_columns(values)
    return (
        str(uuid.uuid4()),
        COUNCIL,
        person.given_name,
        person.family_name,
        values["norm_given"],
        values["norm_family"],
        person.date_of_birth,
        person.postcode,
        person.uprn,
        person.phone,
        person.email,
        "letter",
        "en",
        False,
        keys["given_key"],
        keys["family_key"],
        keys["postcode_district"],
        keys["phone_key"],
        keys["email_key"],
    )


_COLUMNS = [
    "id",
    "council",
    "given_name",
    "family_name",
    "norm_given",
    "norm_family",
    "date_of_birth",
    "postcode",
    "uprn",
    "phone",
    "email",
    "preferred_contact",
    "preferred_language",
    "interpreter_needed",
    "given_key",
    "family_key",
    "postcode_district",
    "phone_key",
    "email_key",
]


async def test_matching_time_per_referral_at_10_000_and_400_000_residents(
    service_database: MakeDatabase,
) -> None:
    people = People(seed=3)
    engine = create_engine(await service_database("referrals"), pool_size=1)
    print("\n\nMatching time per referral (candidate query + comparison), real PostgreSQL")
    loaded: list[Identity] = []
    try:
        for size in (10_000, 400_000):
            batch = [people.person() for _ in range(size - len(loaded))]
            loaded.extend(batch)
            started = time.perf_counter()
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    "residents", records=[_row(p) for p in batch], columns=_COLUMNS
                )
                await connection.execute(text("ANALYZE residents"))
                await connection.commit()
            load = time.perf_counter() - started
            probes = _probes(people, loaded)
            match_ms, baseline_ms, candidates = await _time(engine, probes)
            print(
                f"  {size:>7,} residents (COPY {load:.1f} s):"
                f" median {statistics.median(match_ms):.2f} ms,"
                f" p95 {_p95(match_ms):.2f} ms, {statistics.mean(candidates):.1f} candidates;"
                f" bare query (SELECT 1) median {statistics.median(baseline_ms):.2f} ms"
            )
    finally:
        await engine.dispose()


def _probes(people: People, loaded: list[Identity]) -> list[Identity]:
    """Half are residents known already (with the error patterns), half new people."""
    rng = people.rng
    found = []
    patterns = list(RATES)
    for i in range(PROBES):
        if i % 2:
            known = replace(rng.choice(loaded), resident_id="x")
            found.append(people.with_error(known, rng.choice(patterns)))
        else:
            found.append(replace(people.person(), resident_id=None))
    return found


async def _time(engine, probes: list[Identity]) -> tuple[list[float], list[float], list[int]]:
    match_ms, baseline_ms, candidates = [], [], []
    async with session_factory(engine)() as session:
        for probe in probes:
            started = time.perf_counter()
            rows = await match_candidates(session, COUNCIL, blocking_keys(probe))
            find_matches(probe, [identity_of(row) for row in rows])
            match_ms.append((time.perf_counter() - started) * 1000)
            candidates.append(len(rows))
            started = time.perf_counter()
            await fetch_one(session, text("SELECT 1 AS one"))
            baseline_ms.append((time.perf_counter() - started) * 1000)
        await session.rollback()
    return match_ms, baseline_ms, candidates


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]

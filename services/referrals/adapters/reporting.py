"""The reporting model: facts the ``referrals-reporting`` consumer group writes from events,
and the reads of one council's period. Pseudonymous references and coarse attributes only
(docs/referrals.md, Reporting).

Every write is an upsert whose result does not depend on the order events arrive in or on
how often: a time keeps the earliest (or, for a need's latest waiting or unroutable episode,
the latest) value, a set of needs their union, anything else its first known value.

The tables are declared on the service's own ``metadata`` (so the migrations' drift check
covers them) but live here, beside the only code that uses them."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.referrals.adapters.tables import metadata
from services.referrals.domain.reporting import (
    LONDON,
    REFLAG_FOLLOW_UP,
    REPEAT_WINDOW,
    AssessmentFact,
    CapacityFact,
    CaseFact,
    DryRunFact,
    DryRunRuleFact,
    Facts,
    FlagFact,
    NeedFact,
    OfferFact,
    ReferralFact,
)
from shared.db import bound, bound_columns, fetch_all


def _ref(name: str, *, primary_key: bool = False, nullable: bool = True) -> Column[Any]:
    return Column(name, Text, primary_key=primary_key, nullable=nullable and not primary_key)


def _at(name: str) -> Column[Any]:
    return Column(name, DateTime(timezone=True))


def _texts(name: str) -> Column[Any]:
    return Column(name, ARRAY(Text), nullable=False, server_default="{}")


reporting_cases = Table(
    "reporting_cases",
    metadata,
    _ref("case_ref", primary_key=True),
    Column("council", Text, nullable=False),
    Column("origin", Text),
    _ref("resident_ref"),
    _ref("flag_ref"),
    _at("opened_at"),
    _texts("needs"),
    Column("age_band", Text),
    Column("language", Text),
    Column("area", Text),
    _at("ready_at"),
    _at("closed_at"),
    Column("outcome", Text),
    Column("withdrawn", Boolean),
    _at("consent_withdrawn_at"),
    Index("ix_reporting_cases_council_opened", "council", "opened_at"),
    # Erasure finds a resident's rows, and an outreach case its flag, by these (0014).
    Index("ix_reporting_cases_resident", "resident_ref"),
    Index("ix_reporting_cases_flag", "flag_ref"),
)

reporting_referrals = Table(
    "reporting_referrals",
    metadata,
    _ref("referral_ref", primary_key=True),
    _ref("case_ref", nullable=False),
    Column("council", Text, nullable=False),
    Column("source", Text),
    _ref("resident_ref"),
    _texts("needs"),
    Column("age_band", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_reporting_referrals_council_received", "council", "received_at"),
    Index("ix_reporting_referrals_case", "case_ref"),
    Index("ix_reporting_referrals_resident", "resident_ref"),
)

reporting_offers = Table(
    "reporting_offers",
    metadata,
    _ref("offer_ref", primary_key=True),
    _ref("case_ref", nullable=False),
    Column("need", Text, nullable=False),
    Column("partner_id", Text, nullable=False),
    _at("offered_at"),
    _at("accepted_at"),
    _at("declined_at"),
    Column("decline_reason", Text),
    _at("expired_at"),
    _at("withdrawn_at"),
    Column("outcome", Text),
    _at("outcome_at"),
    Index("ix_reporting_offers_case", "case_ref"),
    Index("ix_reporting_offers_offered", "offered_at"),  # partner load: the period's offers
)

reporting_case_needs = Table(
    "reporting_case_needs",
    metadata,
    _ref("case_ref", primary_key=True),
    Column("need", Text, primary_key=True),
    _at("unroutable_at"),
    _at("waiting_since"),
)

reporting_flags = Table(
    "reporting_flags",
    metadata,
    _ref("flag_ref", primary_key=True),
    Column("council", Text, nullable=False),
    _ref("resident_ref", nullable=False),
    Column("level", Text, nullable=False),
    Column("ruleset_version", Text, nullable=False),
    _texts("rule_ids"),
    Column("returning", Boolean, nullable=False, server_default="false"),
    _texts("needs"),
    Column("age_band", Text),
    Column("area", Text),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Index("ix_reporting_flags_council_flagged", "council", "flagged_at"),
    Index("ix_reporting_flags_resident", "resident_ref"),
)

reporting_assessments = Table(
    "reporting_assessments",
    metadata,
    _ref("case_ref", primary_key=True),
    Column("assessed_at", DateTime(timezone=True), primary_key=True),
    Column("level", Text, nullable=False),
    Column("ruleset_version", Text, nullable=False),
    _texts("rule_ids"),
)

# The latest dry run of each candidate ruleset for a council (0015): counts only, no
# resident reference at all, so an erasure has nothing here to unlink.
reporting_dry_runs = Table(
    "reporting_dry_runs",
    metadata,
    Column("council", Text, primary_key=True),
    Column("candidate_version", Text, primary_key=True),
    Column("in_force_version", Text, nullable=False),
    Column("ran_at", DateTime(timezone=True), nullable=False),
    Column("residents", Integer, nullable=False),
    Column("residents_changing_level", Integer, nullable=False),
    Column("levels_in_force", JSONB, nullable=False, server_default="{}"),
    Column("levels_candidate", JSONB, nullable=False, server_default="{}"),
    Column("rules", JSONB, nullable=False, server_default="[]"),
    Index("ix_reporting_dry_runs_council_ran", "council", "ran_at"),
)

# Each partner service's capacity history (0016), one row a change, from partners'
# ``partners.service.capacity_changed``: operational figures, no resident reference, so an
# erasure has nothing here to unlink.
reporting_service_capacity = Table(
    "reporting_service_capacity",
    metadata,
    Column("service_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), primary_key=True),
    Column("partner_id", Text, nullable=False),
    _texts("needs"),
    Column("capacity", Integer, nullable=False),
    Column("paused", Boolean, nullable=False, server_default="false"),
    # Partner load reads the history of the partners in the period's offers.
    Index("ix_reporting_service_capacity_partner_at", "partner_id", "at"),
)

# How a column merges an upsert's new value into the row's: see the module's docstring.
EARLIEST, LATEST, FIRST, UNION = "earliest", "latest", "first", "union"


async def _upsert(
    session: AsyncSession, table: Table, values: Mapping[str, Any], merge: _Merge
) -> None:
    """Insert the row, or merge it into the one held (each column as ``merge`` says): one
    statement built once for each table, set of columns and merge, its values bound."""
    await session.execute(_upsert_statement(table, tuple(values), merge), bound(values))


_Merge = tuple[tuple[str, str], ...]  # (column, how) for the columns not merged FIRST


@functools.cache
def _upsert_statement(table: Table, names: tuple[str, ...], merge: _Merge) -> Any:
    keys = [c.name for c in table.primary_key.columns]
    statement = pg_insert(table).values(bound_columns(table, names))
    changes: dict[str, Any] = {}
    hows = dict(merge)
    for name in names:
        if name in keys:
            continue
        held, new = table.c[name], statement.excluded[name]
        how = hows.get(name, FIRST)
        if how == EARLIEST:
            changes[name] = func.least(held, new)  # LEAST and GREATEST skip NULLs
        elif how == LATEST:
            changes[name] = func.greatest(held, new)
        elif how == UNION:
            changes[name] = literal_column(
                f"ARRAY(SELECT DISTINCT x FROM unnest({table.name}.{name} || excluded.{name})"
                " AS x ORDER BY x)"
            )
        else:
            changes[name] = func.coalesce(held, new)
    if changes:
        return statement.on_conflict_do_update(index_elements=keys, set_=changes)
    return statement.on_conflict_do_nothing(index_elements=keys)


_CASE_MERGE: _Merge = (
    ("opened_at", EARLIEST),
    ("ready_at", EARLIEST),
    ("closed_at", EARLIEST),
    ("consent_withdrawn_at", LATEST),  # the latest withdrawal is where the case stands
    ("needs", UNION),
)
_REFERRAL_MERGE: _Merge = (("received_at", EARLIEST),)
_OFFER_MERGE: _Merge = tuple(
    (name, EARLIEST)
    for name in ("offered_at", "accepted_at", "declined_at", "expired_at", "withdrawn_at")
)
_CASE_NEED_MERGE: _Merge = (("unroutable_at", LATEST), ("waiting_since", LATEST))


async def upsert_case(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await _upsert(session, reporting_cases, values, _CASE_MERGE)


async def upsert_referral(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await _upsert(session, reporting_referrals, values, _REFERRAL_MERGE)


async def upsert_offer(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """An offer's milestone; an outcome keeps the first recorded (with its time)."""
    if "outcome_at" in values:
        statement = pg_insert(reporting_offers).values(**values)
        held, new = reporting_offers.c, statement.excluded
        earlier = or_(held.outcome_at.is_(None), new.outcome_at < held.outcome_at)
        changes = {
            "outcome": case((earlier, new.outcome), else_=held.outcome),
            "outcome_at": func.least(held.outcome_at, new.outcome_at),
        }
        await session.execute(
            statement.on_conflict_do_update(index_elements=["offer_ref"], set_=changes)
        )
        return
    await _upsert(session, reporting_offers, values, _OFFER_MERGE)


async def upsert_case_need(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await _upsert(session, reporting_case_needs, values, _CASE_NEED_MERGE)


async def insert_flag(session: AsyncSession, values: Mapping[str, Any]) -> None:
    await session.execute(_insert_unless_held(reporting_flags, tuple(values)), bound(values))


async def insert_assessment(session: AsyncSession, values: Mapping[str, Any]) -> None:
    statement = _insert_unless_held(reporting_assessments, tuple(values))
    await session.execute(statement, bound(values))


@functools.cache
def _insert_unless_held(table: Table, names: tuple[str, ...]) -> Any:
    """Built once for each table and set of columns, its values bound; a row held under
    its primary key stays as it is."""
    statement = pg_insert(table).values(bound_columns(table, names))
    return statement.on_conflict_do_nothing(
        index_elements=[c.name for c in table.primary_key.columns]
    )


async def upsert_dry_run(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """A council's dry run of a candidate: the row of the council and candidate keeps the
    latest run (by its time), whatever order runs arrive in; the same run again changes
    nothing."""
    statement = pg_insert(reporting_dry_runs).values(**values)
    keys = ("council", "candidate_version")
    changes = {name: statement.excluded[name] for name in values if name not in keys}
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_=changes,
            where=reporting_dry_runs.c.ran_at < statement.excluded.ran_at,
        )
    )


async def insert_capacity(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """A service's capacity from a time on; the same change again (a replay) changes
    nothing: a service and time is one change."""
    statement = pg_insert(reporting_service_capacity).values(**values)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["service_id", "at"]))


# -- erasure: the rows stay, their references are cut from the erased identifiers ---------


def _fresh_ref() -> ColumnElement[Any]:
    """A reference drawn at random per row, in the shape of the keyed ones (64 hex)."""
    return func.encode(func.sha256(func.uuid_send(func.gen_random_uuid())), "hex")


def _to_the_day(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A time kept to its London day: a referrer who knows the minute finds no row by it."""
    return func.date_trunc("day", column, LONDON.key)


_TIMES: dict[str, tuple[str, ...]] = {
    "reporting_cases": ("opened_at", "ready_at", "closed_at", "consent_withdrawn_at"),
    "reporting_referrals": ("received_at",),
    "reporting_offers": (
        "offered_at",
        "accepted_at",
        "declined_at",
        "expired_at",
        "withdrawn_at",
        "outcome_at",
    ),
    "reporting_case_needs": ("unroutable_at", "waiting_since"),
    "reporting_flags": ("flagged_at",),
}


def _coarsened(table: Table) -> dict[str, ColumnElement[Any]]:
    return {name: _to_the_day(table.c[name]) for name in _TIMES[table.name]}


async def rekey_and_coarsen(
    session: AsyncSession, case_refs: Collection[str], resident_refs: Collection[str]
) -> None:
    """Before the erased cases' and residents' rows are relinked (``relink_*``): the keyed
    references of their referrals and offers (derived from ids a referrer or partner still
    holds) become random, and every time of theirs is kept to the day only, so neither an
    id nor an exact time leads to a row. Figures by day, week or month stay as they were;
    the hours of their durations are whole days now."""
    cases, residents = list(case_refs), list(resident_refs)
    f, o, c, n = (
        reporting_referrals.c,
        reporting_offers.c,
        reporting_cases.c,
        reporting_case_needs.c,
    )
    referrals_of = or_(f.case_ref.in_(cases), f.resident_ref.in_(residents))
    await session.execute(
        update(reporting_referrals)
        .where(referrals_of)
        .values(referral_ref=_fresh_ref(), **_coarsened(reporting_referrals))
    )
    await session.execute(
        update(reporting_offers)
        .where(o.case_ref.in_(cases))
        .values(offer_ref=_fresh_ref(), **_coarsened(reporting_offers))
    )
    await session.execute(
        update(reporting_cases)
        .where(or_(c.case_ref.in_(cases), c.resident_ref.in_(residents)))
        .values(**_coarsened(reporting_cases))
    )
    await session.execute(
        update(reporting_case_needs)
        .where(n.case_ref.in_(cases))
        .values(**_coarsened(reporting_case_needs))
    )
    await session.execute(
        update(reporting_flags)
        .where(reporting_flags.c.resident_ref.in_(residents))
        .values(**_coarsened(reporting_flags))
    )
    # An assessment's time is part of its key: of one day, the first is kept (the reports
    # read only a case's first assessment).
    a, earlier = reporting_assessments, reporting_assessments.alias("earlier")
    await session.execute(
        delete(a).where(
            a.c.case_ref.in_(cases),
            exists().where(
                earlier.c.case_ref == a.c.case_ref,
                earlier.c.assessed_at < a.c.assessed_at,
                _to_the_day(earlier.c.assessed_at) == _to_the_day(a.c.assessed_at),
            ),
        )
    )
    await session.execute(
        update(a).where(a.c.case_ref.in_(cases)).values(assessed_at=_to_the_day(a.c.assessed_at))
    )


async def relink_cases(session: AsyncSession, new_ref_of: Mapping[str, str]) -> None:
    """Give each case's rows (``old ref -> new ref``) a reference nothing derives."""
    tables = (
        reporting_cases,
        reporting_referrals,
        reporting_offers,
        reporting_case_needs,
        reporting_assessments,
    )
    for old, new in new_ref_of.items():
        for table in tables:
            await session.execute(update(table).where(table.c.case_ref == old).values(case_ref=new))


async def flag_refs_of(session: AsyncSession, resident_refs: Iterable[str]) -> list[str]:
    refs = list(resident_refs)
    if not refs:
        return []
    found = await session.scalars(
        select(reporting_flags.c.flag_ref).where(reporting_flags.c.resident_ref.in_(refs))
    )
    return list(found)


async def relink_residents(
    session: AsyncSession,
    new_resident_ref_of: Mapping[str, str],
    new_flag_ref_of: Mapping[str, str],
) -> None:
    for old, new in new_resident_ref_of.items():
        for table in (reporting_cases, reporting_referrals, reporting_flags):
            await session.execute(
                update(table).where(table.c.resident_ref == old).values(resident_ref=new)
            )
    for old, new in new_flag_ref_of.items():
        await session.execute(
            update(reporting_flags).where(reporting_flags.c.flag_ref == old).values(flag_ref=new)
        )
        await session.execute(
            update(reporting_cases).where(reporting_cases.c.flag_ref == old).values(flag_ref=new)
        )


# -- reads ---------------------------------------------------------------------------------


# Partner load: an offer made longer than this before the period, and never ended, is
# stale (nobody recorded its end), not a partner's load; the bound keeps the read the period's.
LOAD_LOOKBACK = timedelta(days=365)


def _start(day: date) -> datetime:
    """The start of a London day (the period's days are the council's)."""
    return datetime.combine(day, time.min, tzinfo=LONDON)


async def facts(session: AsyncSession, council: str, period_from: date, period_to: date) -> Facts:
    """The council's facts for the period: cases opened in it (with their offers, needs and
    assessments), referrals from 90 days before it (repeats) with their case's area, flags
    from its start to the follow-up after its end (later returning flags), and the offers
    open during it made at most a year before it (partner load). Each read is bounded by
    the period and served by an index."""
    start, end = _start(period_from), _start(period_to + timedelta(days=1))
    c = reporting_cases.c
    case_rows = await fetch_all(
        session,
        select(reporting_cases).where(
            c.council == council, c.opened_at >= start, c.opened_at < end
        ),
    )
    cases = [
        CaseFact(
            ref=r["case_ref"],
            council=r["council"],
            origin=r["origin"],
            opened_at=r["opened_at"],
            resident_ref=r["resident_ref"],
            needs=tuple(r["needs"]),
            age_band=r["age_band"],
            language=r["language"],
            area=r["area"],
            ready_at=r["ready_at"],
            closed_at=r["closed_at"],
            flag_ref=r["flag_ref"],
            outcome=r["outcome"],
            withdrawn=bool(r["withdrawn"]),
            consent_withdrawn_at=r["consent_withdrawn_at"],
        )
        for r in case_rows
    ]
    cohort = select(c.case_ref).where(c.council == council, c.opened_at >= start, c.opened_at < end)
    o = reporting_offers.c
    offers = [
        _offer(r)
        for r in await fetch_all(session, select(reporting_offers).where(o.case_ref.in_(cohort)))
    ]
    n = reporting_case_needs.c
    needs = [
        NeedFact(r["case_ref"], r["need"], r["unroutable_at"], r["waiting_since"])
        for r in await fetch_all(
            session, select(reporting_case_needs).where(n.case_ref.in_(cohort))
        )
    ]
    a = reporting_assessments.c
    assessments = [
        AssessmentFact(
            r["case_ref"], r["assessed_at"], r["level"], r["ruleset_version"], tuple(r["rule_ids"])
        )
        for r in await fetch_all(
            session, select(reporting_assessments).where(a.case_ref.in_(cohort))
        )
    ]
    f = reporting_referrals.c
    g = reporting_flags.c
    # A referral is in its case's area (an outreach case's: its flag's until it is routed).
    case_flag = reporting_flags.alias("case_flag")
    referral_area = func.coalesce(c.area, case_flag.c.area).label("case_area")
    referrals = [
        ReferralFact(
            ref=r["referral_ref"],
            case_ref=r["case_ref"],
            received_at=r["received_at"],
            resident_ref=r["resident_ref"],
            source=r["source"],
            needs=tuple(r["needs"]),
            area=r["case_area"],
        )
        for r in await fetch_all(
            session,
            select(reporting_referrals, referral_area)
            .outerjoin(reporting_cases, c.case_ref == f.case_ref)
            .outerjoin(case_flag, case_flag.c.flag_ref == c.flag_ref)
            .where(
                f.council == council,
                f.received_at >= start - REPEAT_WINDOW,
                f.received_at < end,
            ),
        )
    ]
    flags = [
        FlagFact(
            ref=r["flag_ref"],
            resident_ref=r["resident_ref"],
            flagged_at=r["flagged_at"],
            level=r["level"],
            ruleset_version=r["ruleset_version"],
            rule_ids=tuple(r["rule_ids"]),
            returning=r["returning"],
            needs=tuple(r["needs"]),
            age_band=r["age_band"],
            area=r["area"],
        )
        for r in await fetch_all(
            session,
            select(reporting_flags).where(
                g.council == council,
                g.flagged_at >= start,
                g.flagged_at < end + REFLAG_FOLLOW_UP,
            ),
        )
    ]
    ended = func.least(o.declined_at, o.expired_at, o.withdrawn_at, o.outcome_at)
    load_rows = await fetch_all(
        session,
        select(reporting_offers, c.area)
        .join(reporting_cases, c.case_ref == o.case_ref)
        .where(
            c.council == council,
            o.offered_at >= start - LOAD_LOOKBACK,
            o.offered_at < end,
            or_(ended.is_(None), ended >= start),
        ),
    )
    load = [_offer(r, area=r["area"]) for r in load_rows]
    capacity = await capacity_history(session, {o.partner_id for o in load}, until=end)
    dry_runs = await recent_dry_runs(session, council, until=end)
    return Facts(
        period_from=period_from,
        period_to=period_to,
        cases=cases,
        offers=offers,
        needs=needs,
        referrals=referrals,
        flags=flags,
        assessments=assessments,
        load=load,
        capacity=capacity,
        dry_runs=dry_runs,
    )


async def capacity_history(
    session: AsyncSession, partner_ids: Collection[str], *, until: datetime
) -> list[CapacityFact]:
    """Every capacity change of the partners' services before ``until`` (a report's
    period's end): what was in force at each of its weeks' ends."""
    if not partner_ids:
        return []
    k = reporting_service_capacity.c
    rows = await fetch_all(
        session,
        select(reporting_service_capacity).where(
            k.partner_id.in_(sorted(partner_ids)), k.at < until
        ),
    )
    return [
        CapacityFact(
            service_id=r["service_id"],
            partner_id=r["partner_id"],
            at=r["at"],
            capacity=r["capacity"],
            paused=r["paused"],
            needs=tuple(r["needs"]),
        )
        for r in rows
    ]


# How many candidates' dry runs a report shows: the recent ones a council weighs.
RECENT_DRY_RUNS = 5


async def recent_dry_runs(
    session: AsyncSession, council: str, *, until: datetime, limit: int = RECENT_DRY_RUNS
) -> list[DryRunFact]:
    """The latest dry run of each of the council's most recent candidates, run before
    ``until`` (a report's period's end: a past period's report shows what was known by
    then), newest first."""
    d = reporting_dry_runs.c
    rows = await fetch_all(
        session,
        select(reporting_dry_runs)
        .where(d.council == council, d.ran_at < until)
        .order_by(d.ran_at.desc(), d.candidate_version)
        .limit(limit),
    )
    return [
        DryRunFact(
            candidate_version=r["candidate_version"],
            in_force_version=r["in_force_version"],
            ran_at=r["ran_at"],
            residents=r["residents"],
            residents_changing_level=r["residents_changing_level"],
            levels_in_force=dict(r["levels_in_force"]),
            levels_candidate=dict(r["levels_candidate"]),
            rules=tuple(
                DryRunRuleFact(rule["rule_id"], int(rule["in_force"]), int(rule["candidate"]))
                for rule in r["rules"]
            ),
        )
        for r in rows
    ]


def _offer(row: RowMapping, area: str | None = None) -> OfferFact:
    return OfferFact(
        ref=row["offer_ref"],
        case_ref=row["case_ref"],
        need=row["need"],
        partner_id=row["partner_id"],
        offered_at=row["offered_at"],
        accepted_at=row["accepted_at"],
        declined_at=row["declined_at"],
        decline_reason=row["decline_reason"],
        expired_at=row["expired_at"],
        withdrawn_at=row["withdrawn_at"],
        outcome=row["outcome"],
        outcome_at=row["outcome_at"],
        area=area,
    )

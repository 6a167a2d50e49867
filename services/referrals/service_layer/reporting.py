"""Reporting: the use cases that keep the reporting model (called by the
``referrals-reporting`` consumer group's handlers, ``reporting_handlers.py``) and the ones
that read it (the API, the council's pages, the open-statistics export).

Pseudonymous references: a reporting row never holds a case id, resident key, referral or
offer id, only ``reference(secret, kind, identifier)``, an HMAC-SHA256 keyed with the
service's ``resident_key_secret`` over ``reporting|<kind>|<identifier>``. The domain prefix
makes it a derivation of its own: it equals no resident key, no tombstone
(``shared.erasure.tombstone`` hashes ``erased|…``) and no other kind's reference, so a scan
of the reporting tables for a resident's ids (or their tombstones) finds nothing, while the
same case's events, arriving on three topics in any order, land on one row. An erasure
cuts even that link (``forget``): the rows of the erased cases and keys (their referrals and
offers too) get fresh random references and keep their times to the day only, so the
figures survive and nothing derives them any more.

The reads compute in a worker thread (``asyncio.to_thread``): a council's years of facts
take a while even in n log n, and the event loop serves other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import reporting as reporting_db
from services.referrals.domain.reporting import (
    LONDON,
    CellResidents,
    DryRunRuleFact,
    Facts,
    Filters,
    OutcomesReport,
    ReachReport,
    RulesReport,
    age_band,
    cell_residents,
    outcomes_report,
    reach_report,
    rules_report,
)
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import OrganisationKind, Principal
from shared.errors import Invalid, NotFound
from shared.identity import age_in_years, postcode_district

MAX_PERIOD = timedelta(days=3 * 366)
DEFAULT_PERIOD = timedelta(days=89)  # ninety days, today included
# The dates a period may take: nothing the service holds is older, and a report may look
# ahead a year at most (beyond both, the dates' arithmetic would overflow).
EARLIEST_DAY = date(2000, 1, 1)
LOOK_AHEAD = timedelta(days=366)


def reference(secret: str, kind: str, identifier: str) -> str:
    """The pseudonymous reference reporting rows know an identifier by (module docstring)."""
    message = f"reporting|{kind}|{identifier}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _flag_identifier(resident_key: str, flagged_at: datetime) -> str:
    # The flag and the outreach case it opened both carry the key and this time.
    return f"{resident_key}|{flagged_at.astimezone(UTC).isoformat()}"


def _secret(uow: ReferralsUnitOfWork) -> str:
    return uow.settings.resident_key_secret.get_secret_value()


def _refs(uow: ReferralsUnitOfWork, kind: str, identifier: str) -> str:
    return reference(_secret(uow), kind, identifier)


def _event_time(uow: ReferralsUnitOfWork) -> datetime:
    """The time of the event being applied (for events whose payload carries none)."""
    return uow.event.time if uow.event is not None else uow.now()


# -- keeping the model ---------------------------------------------------------------------


async def case_opened(
    uow: ReferralsUnitOfWork,
    *,
    case_id: str,
    council: str,
    origin: str,
    resident_keys: Sequence[str],
    opened_at: datetime,
    flagged_at: datetime | None,
) -> None:
    flag_ref = (
        _refs(uow, "flag", _flag_identifier(resident_keys[0], flagged_at))
        if flagged_at is not None and resident_keys
        else None
    )
    async with uow.transaction() as session:
        await reporting_db.upsert_case(
            session,
            {
                "case_ref": _refs(uow, "case", case_id),
                "council": council,
                "origin": origin,
                "resident_ref": _refs(uow, "resident", resident_keys[0]) if resident_keys else None,
                "flag_ref": flag_ref,
                "opened_at": opened_at,
            },
        )


async def referral_received(
    uow: ReferralsUnitOfWork,
    *,
    referral_id: str,
    case_id: str,
    council: str,
    source: str | None,
    resident_keys: Sequence[str],
    needs: Sequence[str],
    age_years: int | None,
    received_at: datetime,
) -> None:
    case_ref = _refs(uow, "case", case_id)
    resident_ref = _refs(uow, "resident", resident_keys[0]) if resident_keys else None
    band = age_band(age_years) if age_years is not None else None
    async with uow.transaction() as session:
        await reporting_db.upsert_referral(
            session,
            {
                "referral_ref": _refs(uow, "referral", referral_id),
                "case_ref": case_ref,
                "council": council,
                "source": source,
                "resident_ref": resident_ref,
                "needs": sorted(set(needs)),
                "age_band": band,
                "received_at": received_at,
            },
        )
        # The case row too: a referral opens (or joins) it; its needs and age are known.
        await reporting_db.upsert_case(
            session,
            {
                "case_ref": case_ref,
                "council": council,
                "resident_ref": resident_ref,
                "needs": sorted(set(needs)),
                "age_band": band,
                "opened_at": received_at,
            },
        )


async def case_ready_for_routing(
    uow: ReferralsUnitOfWork,
    *,
    case_id: str,
    council: str,
    needs: Sequence[str],
    age_years: int | None,
    language: str | None,
    area: str | None,
) -> None:
    """Consent obtained (or another basis allows sharing): the packet's coarse attributes."""
    async with uow.transaction() as session:
        await reporting_db.upsert_case(
            session,
            {
                "case_ref": _refs(uow, "case", case_id),
                "council": council,
                "needs": sorted(set(needs)),
                "age_band": age_band(age_years) if age_years is not None else None,
                "language": language,
                "area": area.upper() if area else None,
                "ready_at": _event_time(uow),
            },
        )


async def case_closed(
    uow: ReferralsUnitOfWork,
    *,
    case_id: str,
    council: str,
    outcome: str | None,
    withdrawn: bool,
    closed_at: datetime,
) -> None:
    async with uow.transaction() as session:
        await reporting_db.upsert_case(
            session,
            {
                "case_ref": _refs(uow, "case", case_id),
                "council": council,
                "outcome": outcome,
                "withdrawn": withdrawn,
                "closed_at": closed_at,
            },
        )


async def consent_withdrawn(
    uow: ReferralsUnitOfWork, *, case_id: str, council: str, at: datetime
) -> None:
    async with uow.transaction() as session:
        await reporting_db.upsert_case(
            session,
            {
                "case_ref": _refs(uow, "case", case_id),
                "council": council,
                "consent_withdrawn_at": at,
            },
        )


@dataclass(frozen=True)
class OfferMilestone:
    offer_id: str
    case_id: str
    need: str
    partner_id: str
    offered_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = None
    expired_at: datetime | None = None
    withdrawn_at: datetime | None = None
    outcome: str | None = None
    outcome_at: datetime | None = None


async def offer_milestone(uow: ReferralsUnitOfWork, milestone: OfferMilestone) -> None:
    values = {
        "offer_ref": _refs(uow, "offer", milestone.offer_id),
        "case_ref": _refs(uow, "case", milestone.case_id),
        "need": milestone.need,
        "partner_id": milestone.partner_id,
    }
    for name in (
        "offered_at",
        "accepted_at",
        "declined_at",
        "decline_reason",
        "expired_at",
        "withdrawn_at",
        "outcome",
        "outcome_at",
    ):
        value = getattr(milestone, name)
        if value is not None:
            values[name] = value
    async with uow.transaction() as session:
        await reporting_db.upsert_offer(session, values)


async def needs_unroutable(
    uow: ReferralsUnitOfWork, *, case_id: str, needs: Iterable[str], at: datetime
) -> None:
    async with uow.transaction() as session:
        for need in sorted(set(needs)):
            await reporting_db.upsert_case_need(
                session,
                {"case_ref": _refs(uow, "case", case_id), "need": need, "unroutable_at": at},
            )


async def need_waiting(
    uow: ReferralsUnitOfWork, *, case_id: str, need: str, since: datetime
) -> None:
    async with uow.transaction() as session:
        await reporting_db.upsert_case_need(
            session, {"case_ref": _refs(uow, "case", case_id), "need": need, "waiting_since": since}
        )


@dataclass(frozen=True)
class Flag:
    resident_key: str
    council: str
    level: str
    ruleset_version: str
    rule_ids: tuple[str, ...]
    returning: bool
    needs: tuple[str, ...]
    flagged_at: datetime
    date_of_birth: date | None  # from the sealed identity: only the age band is kept
    postcode: str | None  # likewise: only its district is kept


async def resident_flagged(uow: ReferralsUnitOfWork, flag: Flag) -> None:
    district = postcode_district(flag.postcode) if flag.postcode else None
    async with uow.transaction() as session:
        await reporting_db.insert_flag(
            session,
            {
                "flag_ref": _refs(
                    uow, "flag", _flag_identifier(flag.resident_key, flag.flagged_at)
                ),
                "council": flag.council,
                "resident_ref": _refs(uow, "resident", flag.resident_key),
                "level": flag.level,
                "ruleset_version": flag.ruleset_version,
                "rule_ids": sorted(set(flag.rule_ids)),
                "returning": flag.returning,
                "needs": sorted(set(flag.needs)),
                "age_band": age_band(age_in_years(flag.date_of_birth, flag.flagged_at.date()))
                if flag.date_of_birth
                else None,
                "area": district,
                "flagged_at": flag.flagged_at,
            },
        )


async def risk_assessed(
    uow: ReferralsUnitOfWork,
    *,
    case_id: str,
    level: str,
    ruleset_version: str,
    rule_ids: Iterable[str],
    assessed_at: datetime,
) -> None:
    async with uow.transaction() as session:
        await reporting_db.insert_assessment(
            session,
            {
                "case_ref": _refs(uow, "case", case_id),
                "assessed_at": assessed_at,
                "level": level,
                "ruleset_version": ruleset_version,
                "rule_ids": sorted(set(rule_ids)),
            },
        )


@dataclass(frozen=True)
class DryRun:
    """A council's dry run of a candidate ruleset, as risk published it: counts only."""

    council: str
    candidate_version: str
    in_force_version: str
    ran_at: datetime
    residents: int
    residents_changing_level: int
    levels_in_force: Mapping[str, int]
    levels_candidate: Mapping[str, int]
    rules: Sequence[DryRunRuleFact]


async def dry_run_completed(uow: ReferralsUnitOfWork, run: DryRun) -> None:
    """Keep the council's latest dry run of the candidate (an earlier or repeated one
    changes nothing), for the rule evaluation's dry runs table."""
    async with uow.transaction() as session:
        await reporting_db.upsert_dry_run(
            session,
            {
                "council": run.council,
                "candidate_version": run.candidate_version,
                "in_force_version": run.in_force_version,
                "ran_at": run.ran_at,
                "residents": run.residents,
                "residents_changing_level": run.residents_changing_level,
                "levels_in_force": dict(run.levels_in_force),
                "levels_candidate": dict(run.levels_candidate),
                "rules": [
                    {"rule_id": r.rule_id, "in_force": r.in_force, "candidate": r.candidate}
                    for r in run.rules
                ],
            },
        )


@dataclass(frozen=True)
class CapacityChange:
    service_id: str
    partner_id: str
    needs: Sequence[str]
    capacity: int
    paused: bool
    at: datetime


async def capacity_changed(uow: ReferralsUnitOfWork, change: CapacityChange) -> None:
    """A partner service's capacity from a time on, for the partner load (every council's:
    a service is a partner's, whichever councils its offers come from)."""
    async with uow.transaction() as session:
        await reporting_db.insert_capacity(
            session,
            {
                "service_id": change.service_id,
                "partner_id": change.partner_id,
                "needs": sorted(set(change.needs)),
                "capacity": change.capacity,
                "paused": change.paused,
                "at": change.at,
            },
        )


async def forget(
    uow: ReferralsUnitOfWork, *, case_ids: Iterable[str], resident_keys: Iterable[str]
) -> None:
    """An erasure: the erased cases' and keys' rows keep their figures under fresh random
    references, so neither the identifiers nor the secret lead to them any more."""
    async with uow.transaction() as session:
        await unlink(uow, session, case_ids=case_ids, resident_keys=resident_keys)


async def unlink(
    uow: ReferralsUnitOfWork,
    session: AsyncSession,
    *,
    case_ids: Iterable[str],
    resident_keys: Iterable[str],
) -> None:
    """``forget``, in the caller's transaction (the erasure's own)."""

    def fresh() -> str:
        return hashlib.sha256(uuid.uuid4().bytes).hexdigest()

    cases = {_refs(uow, "case", i): fresh() for i in dict.fromkeys(case_ids)}
    residents = {_refs(uow, "resident", k): fresh() for k in dict.fromkeys(resident_keys)}
    flags = {ref: fresh() for ref in await reporting_db.flag_refs_of(session, residents)}
    # First, while the rows still answer to the keyed references: their referral and offer
    # references (keyed over ids referrers and partners hold) and their exact times.
    await reporting_db.rekey_and_coarsen(session, cases, residents)
    await reporting_db.relink_cases(session, cases)
    await reporting_db.relink_residents(session, residents, flags)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    """A council's report: the period (London dates, both included) and the filters."""

    period_from: date | None = None
    period_to: date | None = None
    area: str | None = None
    need: str | None = None


@dataclass(frozen=True)
class CouncilReports:
    outcomes: OutcomesReport
    rules: RulesReport
    reach: ReachReport


def _period(uow: ReferralsUnitOfWork, query: ReportQuery) -> tuple[date, date]:
    today = uow.now().astimezone(LONDON).date()
    latest = today + LOOK_AHEAD
    for name, given in (("from", query.period_from), ("to", query.period_to)):
        if given is not None and not EARLIEST_DAY <= given <= latest:
            raise Invalid(name, f"a date from {EARLIEST_DAY} to {latest} (a year from today)")
    period_to = query.period_to or today
    # A default start never before the earliest day (a period ending early in 2000).
    period_from = query.period_from or max(period_to - DEFAULT_PERIOD, EARLIEST_DAY)
    if period_from > period_to:
        raise Invalid("from", "the period's start is after its end (to)")
    if period_to - period_from > MAX_PERIOD:
        raise Invalid("to", "a report covers at most three years")
    return period_from, period_to


def _may_read(principal: Principal, council: str) -> None:
    """A council's own figures; an operator's: every council's. Another council's are as
    absent as its cases (404), not forbidden: a caller learns nothing of who is served."""
    if principal.kind is OrganisationKind.OPERATOR:
        return
    if principal.kind is OrganisationKind.COUNCIL and principal.organisation == council:
        return
    raise NotFound("no reports for this council")


async def _facts(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> tuple[Facts, Filters]:
    _may_read(principal, council)
    period_from, period_to = _period(uow, query)
    area = query.area.strip().upper() if query.area else None
    async with uow.snapshot() as session:
        found = await reporting_db.facts(session, council, period_from, period_to)
    return found, Filters(area=area, need=query.need)


async def outcomes(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> OutcomesReport:
    found, filters = await _facts(uow, principal, council, query)
    return await asyncio.to_thread(outcomes_report, council, found, filters)


async def rules(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> RulesReport:
    found, filters = await _facts(uow, principal, council, query)
    return await asyncio.to_thread(rules_report, council, found, filters)


async def reach(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> ReachReport:
    found, filters = await _facts(uow, principal, council, query)
    return await asyncio.to_thread(reach_report, council, found, filters)


async def council_reports(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> CouncilReports:
    """Every figure of a council's period at once, from one read of the model: for the
    council's pages and the open-statistics export."""
    found, filters = await _facts(uow, principal, council, query)

    def compute() -> CouncilReports:
        return CouncilReports(
            outcomes=outcomes_report(council, found, filters),
            rules=rules_report(council, found, filters),
            reach=reach_report(council, found, filters),
        )

    return await asyncio.to_thread(compute)


@dataclass(frozen=True)
class OpenStatisticsFigures:
    """The open-statistics export's figures of a council's period, from one read of the
    model: the counts (an outcome report) and the residents behind each (never shown)."""

    outcomes: OutcomesReport
    residents: CellResidents


async def open_statistics_figures(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, query: ReportQuery
) -> OpenStatisticsFigures:
    found, filters = await _facts(uow, principal, council, query)

    def compute() -> OpenStatisticsFigures:
        return OpenStatisticsFigures(
            outcomes=outcomes_report(council, found, filters),
            residents=cell_residents(found, filters),
        )

    return await asyncio.to_thread(compute)

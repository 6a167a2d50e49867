"""The harness of the reporting tests: a referrals service with its reporting model, and
a council's day as the other services' events with the counts it should give (used by the
reporting, open-statistics and reporting-pages tests)."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referrals.bootstrap import SERVICE
from services.referrals.reporting_handlers import REPORTING_GROUP
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.events.envelope import utc_now
from shared.events.payloads import (
    CaseOpened,
    CaseReadyForRouting,
    CaseUnroutable,
    ContactRoute,
    FlaggedIdentity,
    NeedWaiting,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OutcomeRecorded,
    Reason,
    ReferralOffered,
    ReferralReceived,
    ResidentFlagged,
    RiskAssessed,
    RoutingPacket,
)
from shared.identity import seal_identity
from shared.messaging.consumer import EventConsumer
from tests.integration.messaging_helpers import wait_for
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, running_consumer

RULESET = "default@test"
POSITIVE = {"support_provided", "partly_resolved"}


# -- the service: its app, and its reporting consumer group under a group id of the test's --


@dataclass
class Reporting:
    client: httpx.AsyncClient
    engine: AsyncEngine
    settings: ReferralsSettings
    kafka: Broker

    @contextlib.asynccontextmanager
    async def consumer(self, group_id: str) -> AsyncIterator[EventConsumer]:
        """The reporting consumer group, as the worker runs it, under ``group_id``: a second
        one started with the same id resumes where the first committed."""
        async with running_consumer(
            SERVICE,
            self.engine,
            self.settings,
            self.kafka,
            group=REPORTING_GROUP,
            group_id=group_id,
        ) as runner:
            yield runner

    def token(self, council: str, *roles: Role, kind: str = "council") -> dict[str, str]:
        organisation_kind = OrganisationKind(kind)
        token = mint_token(
            self.settings,
            subject="manager-person",
            organisation=council if kind == "council" else "operator",
            kind=organisation_kind,
            roles=roles or [Role.MANAGER],
        )
        return {"Authorization": f"Bearer {token}"}

    async def report(
        self,
        council: str,
        name: str,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.client.get(
            f"/v1/reports/{council}/{name}",
            params=query or {},
            headers=headers if headers is not None else self.token(council),
        )

    async def scan(self) -> str:
        """Every reporting row, as text."""
        async with self.engine.connect() as connection:
            rows: list[str] = []
            for table in (
                "reporting_cases",
                "reporting_referrals",
                "reporting_offers",
                "reporting_case_needs",
                "reporting_flags",
                "reporting_assessments",
            ):
                found = await connection.execute(text(f"SELECT t::text FROM {table} t"))
                rows.extend(found.scalars().all())
        return "\n".join(rows)


def _key() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex  # the shape of a resident key (64 hex)


@dataclass
class Offer:
    need: str
    partner: str
    response: str  # accepted, declined, expired, open
    reason: str | None = None
    outcome: str | None = None
    offered_after: float = 1.0  # hours after the case opened
    accepted_after: float = 2.0
    outcome_after: float = 5.0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Case:
    source: str | None  # the referrer's kind; None: an outreach case
    needs: list[str]
    age: int | None
    area: str | None
    language: str
    ready: bool
    offers: list[Offer] = field(default_factory=list)
    unroutable: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    level: str | None = None  # a referral's assessment
    rules: list[str] = field(default_factory=list)  # a flag's
    resident_key: str = field(default_factory=_key)
    opened_after: float = 0.0  # hours after the day's start
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    referral_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Flag:
    """A flag that opened no case (the resident had one open), or a returning one."""

    resident_key: str
    rules: list[str]
    returning: bool = False
    after: float = 0.0


@dataclass
class Day:
    council: str
    start: datetime
    cases: list[Case]
    flags: list[Flag] = field(default_factory=list)
    secret: str = ""
    sent: list[str] = field(default_factory=list)  # the ids of the events sent of the day

    def events(self) -> list[tuple[BaseModel, str]]:
        """(payload, Kafka key): the case events, then the offers, as the services send them."""
        sent: list[tuple[BaseModel, str]] = []
        for case in self.cases:
            at = self.start + timedelta(hours=case.opened_after)
            flagged = case.source is None
            if flagged:
                sent.append(
                    (self._flag(case.resident_key, case.rules, False, at, case), case.resident_key)
                )
            sent.append(
                (
                    CaseOpened(
                        case_id=case.id,
                        council=self.council,
                        origin="flag" if flagged else "referral",
                        resident_keys=[case.resident_key],
                        opened_at=at,
                        flagged_at=at if flagged else None,
                    ),
                    case.id,
                )
            )
            if not flagged:
                sent.append(
                    (
                        ReferralReceived(
                            case_id=case.id,
                            referral_id=case.referral_id,
                            council=self.council,
                            resident_keys=[case.resident_key],
                            age_years=case.age,
                            needs=case.needs,
                            urgency="medium",
                            received_at=at,
                            referrer_kind=case.source,
                        ),
                        case.id,
                    )
                )
            if case.level is not None:
                sent.append(
                    (
                        RiskAssessed(
                            case_id=case.id,
                            level=case.level,
                            score=50,
                            reasons=[Reason(rule_id="arrears", explanation="Rent arrears")],
                            ruleset_version=RULESET,
                            assessed_at=at + timedelta(minutes=1),
                        ),
                        case.id,
                    )
                )
            if case.ready:
                sent.append((self._ready(case), case.id))
        for case in self.cases:
            at = self.start + timedelta(hours=case.opened_after)
            for offer in case.offers:
                sent.extend((event, case.id) for event in _offer_events(case, offer, at))
            if case.unroutable:
                sent.append(
                    (
                        CaseUnroutable(
                            case_id=case.id,
                            needs=case.unroutable,
                            reasons=["no partner"],
                            at=at + timedelta(hours=6),
                        ),
                        case.id,
                    )
                )
            for need in case.waiting:
                sent.append(
                    (
                        NeedWaiting(case_id=case.id, need=need, since=at + timedelta(hours=7)),
                        case.id,
                    )
                )
        for flag in self.flags:
            at = self.start + timedelta(hours=flag.after)
            sent.append(
                (
                    self._flag(flag.resident_key, flag.rules, flag.returning, at, None),
                    flag.resident_key,
                )
            )
        return sent

    def _flag(
        self, key: str, rules: list[str], returning: bool, at: datetime, case: Case | None
    ) -> ResidentFlagged:
        age = case.age if case and case.age is not None else 40
        identity = FlaggedIdentity(
            given_name="Ada",
            family_name="Example",
            date_of_birth=date(at.year - age, 1, 1),
            postcode=f"{case.area} 1AA" if case and case.area else "E6 1AA",
            phone="020 7946 0000",
        )
        return ResidentFlagged(
            resident_key=key,
            council=self.council,
            level="high",
            score=60,
            reasons=[Reason(rule_id=r, explanation=r) for r in rules],
            suggested_needs=case.needs if case else ["food"],
            ruleset_version=RULESET,
            sealed_identity=seal_identity(self.secret, identity.model_dump(mode="json")),
            flagged_at=at,
            returning=returning,
        )

    def _ready(self, case: Case) -> CaseReadyForRouting:
        return CaseReadyForRouting(
            case_id=case.id,
            council=self.council,
            lawful_basis="consent",
            packet=RoutingPacket(
                first_name="Ada",
                contact=ContactRoute(method="phone", value="020 7946 0000"),
                needs=case.needs,
                council=self.council,
                postcode_district=case.area,
                age_years=case.age,
                preferred_language=case.language,
                urgency="medium",
                summary="Needs: food",
            ),
        )


def a_day(council: str, secret: str) -> Day:
    """Referrals from two kinds of referrer and three flags, in two areas, with every kind
    of response and outcome; one resident referred twice; one flagged again after help."""
    start = utc_now().replace(microsecond=0) - timedelta(hours=12)
    repeat = _key()
    helped_after_flag = _key()
    cases = [
        Case(
            "council",
            ["food"],
            30,
            "E15",
            "en",
            True,
            [Offer("food", "p1", "accepted", outcome="support_provided")],
            level="high",
            resident_key=repeat,
        ),
        Case(
            "vcs",
            ["food", "housing"],
            70,
            "E15",
            "pl",
            True,
            [
                Offer("food", "p1", "declined", reason="no_capacity"),
                Offer(
                    "food",
                    "p2",
                    "accepted",
                    outcome="resident_uncontactable",
                    offered_after=3,
                    accepted_after=4,
                    outcome_after=9,
                ),
            ],
            unroutable=["housing"],
            level="medium",
        ),
        Case(
            "vcs",
            ["money_and_debt"],
            20,
            "E7",
            "en",
            True,
            [Offer("money_and_debt", "p2", "expired")],
            waiting=["money_and_debt"],
            level="high",
        ),
        Case("council", ["housing"], 45, None, "en", False),
        Case(
            "council",
            ["food"],
            31,
            "E15",
            "en",
            True,
            [Offer("food", "p1", "open", offered_after=2)],
            resident_key=repeat,
            opened_after=0.5,
        ),
        # Outreach: one helped (and flagged again after), one never consented.
        Case(
            None,
            ["fuel_and_utilities"],
            68,
            "E7",
            "bn",
            True,
            [
                Offer(
                    "fuel_and_utilities",
                    "p3",
                    "accepted",
                    outcome="partly_resolved",
                    outcome_after=24,
                )
            ],
            rules=["arrears", "fuel"],
            resident_key=helped_after_flag,
        ),
        Case(None, ["food"], 17, "E7", "en", False, rules=["arrears"]),
    ]
    flags = [Flag(_key(), ["fuel"]), Flag(helped_after_flag, ["fuel"], returning=True, after=30)]
    return Day(council, start, cases, flags, secret)


def expected_outcomes(day: Day) -> dict[str, Any]:
    """The outcome figures counted straight from the day, not through the reporting code."""
    referred = [c for c in day.cases if c.source is not None]
    by_source_need = Counter((c.source, n) for c in referred for n in c.needs)
    by_source_need.update(("flag", n) for c in day.cases if c.source is None for n in c.needs)
    by_source = Counter(c.source or "flag" for c in day.cases)
    offers = [o for c in day.cases for o in c.offers]
    responses = Counter((o.response, o.reason if o.response == "declined" else "") for o in offers)
    outcomes = Counter((o.need, o.partner, o.outcome) for o in offers if o.outcome)
    return {
        "referrals_by_source_and_need": dict(by_source_need),
        "referrals_by_source": dict(by_source),
        "offer_responses": dict(responses),
        "outcomes": dict(outcomes),
        "first_offer_cases": sum(1 for c in day.cases if c.offers),
        "accepted_cases": sum(
            1 for c in day.cases if any(o.response == "accepted" for o in c.offers)
        ),
        "repeats": len(referred) - len({c.resident_key for c in referred}),
        "referrals": len(referred),
    }


def observed_outcomes(report: dict[str, Any]) -> dict[str, Any]:
    durations = {d["measure"]: d for d in report["durations"]}
    (repeat,) = report["repeat_referrals"]
    return {
        "referrals_by_source_and_need": {
            (r["source"], r["need"]): r["referral_needs"]
            for r in report["referrals_by_source_and_need"]
        },
        "referrals_by_source": {r["source"]: r["referrals"] for r in report["referrals_by_source"]},
        "offer_responses": {
            (r["response"], r["reason"]): r["offers"] for r in report["offer_responses"]
        },
        "outcomes": {
            (r["need"], r["partner_id"], r["outcome"]): r["offers"]
            for r in report["outcomes_by_need_and_partner"]
        },
        "first_offer_cases": durations["time_to_first_offer"]["cases"],
        "accepted_cases": durations["time_to_acceptance"]["cases"],
        "repeats": repeat["repeat_within_90_days"],
        "referrals": repeat["referrals"],
    }


def period(day: Day) -> dict[str, str]:
    today = utc_now().date()
    return {"from": str(day.start.date() - timedelta(days=1)), "to": str(today)}


async def send(publisher: Publisher, day: Day) -> None:
    for payload, key in day.events():
        day.sent.append((await publisher.send(payload, subject=key)).id)


async def until_outcomes(reporting: Reporting, day: Day) -> dict[str, Any]:
    """The outcome report once every event of the day sent has been applied (partitions are
    consumed in any order: the figures compared below may match before the last) and its
    figures are the ones expected."""
    expected = expected_outcomes(day)

    async def applied() -> bool:
        async with reporting.engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT count(DISTINCT event_id) FROM inbox WHERE event_id = ANY(:ids)"),
                {"ids": day.sent},
            )
        return int(found or 0) >= len(set(day.sent))

    await wait_for(applied, timeout=90, interval=0.3, what="every event of the day applied")

    async def matches() -> dict[str, Any] | None:
        response = await reporting.report(day.council, "outcomes", period(day))
        assert response.status_code == 200, response.text
        report = response.json()
        return report if observed_outcomes(report) == expected else None

    try:
        return await wait_for(matches, timeout=90, interval=0.3, what="the outcome figures")
    except AssertionError:
        report = (await reporting.report(day.council, "outcomes", period(day))).json()
        assert observed_outcomes(report) == expected  # shows the difference
        raise


def new_group() -> str:
    return f"{REPORTING_GROUP}-test-{uuid.uuid4().hex[:8]}"


def _offer_events(case: Case, offer: Offer, at: datetime) -> list[BaseModel]:
    """What partners say of one offer: made, then accepted (and its outcome), declined or
    expired."""
    common = {
        "offer_id": offer.id,
        "case_id": case.id,
        "need": offer.need,
        "partner_id": offer.partner,
    }
    events: list[BaseModel] = [
        ReferralOffered(
            **common,
            at=at + timedelta(hours=offer.offered_after),
            partner_name=offer.partner,
            service_id=offer.partner,
            service_name=offer.partner,
            respond_by=at + timedelta(days=2),
        )
    ]
    answered = at + timedelta(hours=offer.accepted_after)
    if offer.response == "accepted":
        events.append(OfferAccepted(**common, at=answered))
        if offer.outcome:
            events.append(
                OutcomeRecorded(
                    **common,
                    at=at + timedelta(hours=offer.outcome_after),
                    outcome=offer.outcome,
                    note="Mrs Example was helped",  # free text: never kept
                )
            )
    elif offer.response == "declined":
        events.append(OfferDeclined(**common, at=answered, reason=offer.reason or "other"))
    elif offer.response == "expired":
        events.append(OfferExpired(**common, at=answered))
    return events

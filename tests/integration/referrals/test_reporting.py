"""The reporting model from real events: the ``referrals-reporting`` consumer group on the
real broker writes the model in a real referrals database, and the reports the API answers
with equal what a count over the events sent gives. Also: a stopped consumer group catches
up; a duplicate changes nothing; another council's figures never show; the model holds no
identifier; an erasure cuts the link and keeps the figures; bad queries are 422s.

The broker's topics hold other tests' events too: each test sends for councils of its own,
and every count is of those councils."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from services.referrals.bootstrap import SERVICE
from services.referrals.service_layer.reporting import reference
from services.referrals.settings import ReferralsSettings
from shared.auth import Role
from shared.erasure import tombstone
from shared.events.envelope import utc_now
from shared.events.payloads import (
    ErasureRequested,
)
from tests.integration.messaging_helpers import wait_for
from tests.integration.referrals.conftest import module_database, unique_council
from tests.integration.referrals.reporting_world import (
    POSITIVE,
    Day,
    Reporting,
    a_day,
    expected_outcomes,
    new_group,
    observed_outcomes,
    period,
    send,
    until_outcomes,
)
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, serve
from tests.support.services import publisher as start_publisher

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def reporting(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[Reporting]:
    async with module_database(postgres_admin_url) as url:
        settings = ReferralsSettings(database_url=url, councils=[])
        async with serve(SERVICE, settings) as (client, engine):
            yield Reporting(client, engine, settings, kafka)


@pytest.fixture(scope="module")
async def publisher(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as sender:
        yield sender


# -- a council's day, as the other services' events, and the counts it should give --------


# -- the tests -------------------------------------------------------------------------------


async def test_the_reports_equal_the_counts_of_the_events_sent(
    reporting: Reporting, publisher: Publisher
) -> None:
    council = unique_council()
    reporting.settings.councils.append(council)
    day = a_day(council, reporting.settings.resident_key_secret.get_secret_value())
    async with reporting.consumer(new_group()):
        await send(publisher, day)
        report = await until_outcomes(reporting, day)

        durations = {d["measure"]: d for d in report["durations"]}
        # First offers 1 h after opening (x4: cases 0, 2, 5 and case 1's first) and 2 h (case 4).
        assert durations["time_to_first_offer"]["median_hours"] == 1.0
        # Every case is in the cohort; those never offered are still open, not yet reached.
        first_offer = durations["time_to_first_offer"]
        assert first_offer["cohort"] == len(day.cases)
        assert first_offer["not_yet_reached"] == sum(1 for c in day.cases if not c.offers)
        assert first_offer["closed_without"] == 0
        from_flag = durations["time_to_first_offer_from_flag"]
        flagged_cases = [c for c in day.cases if c.source is None]
        assert from_flag["cohort"] == len(flagged_cases)
        assert from_flag["cases"] == sum(1 for c in flagged_cases if c.offers)
        assert durations["time_to_first_offer_from_referral"]["cohort"] == len(day.cases) - len(
            flagged_cases
        )
        assert durations["time_to_outcome"]["cases"] == 3
        # Outcomes at 5 h, 9 h and 24 h: the median is the middle one.
        assert durations["time_to_outcome"]["median_hours"] == 9.0
        by_area = {row["area"]: row for row in report["needs_by_area"]}
        assert by_area["E15"]["met"] == 1 and by_area["E15"]["not_met"] == 1
        assert by_area["E15"]["unroutable"] == 1 and by_area["E15"]["in_progress"] == 1
        assert by_area["E7"]["waiting"] == 1 and by_area["E7"]["met"] == 1
        assert by_area["unknown"]["in_progress"] == 1
        loads: Counter[str] = Counter()
        for week in report["partner_load"]:
            loads[week["partner_id"]] += week["offered"]
        sent_offers = Counter(o.partner for c in day.cases for o in c.offers)
        assert dict(loads) == dict(sent_offers)

        rules = (await reporting.report(council, "rules", period(day))).json()
        by_rule = {r["rule_id"]: r for r in rules["rules"]}
        flagged = [c for c in day.cases if c.source is None]
        for rule in ("arrears", "fuel"):
            cases = [c for c in flagged if rule in c.rules]
            extra = {f.resident_key for f in day.flags if rule in f.rules}
            residents = {c.resident_key for c in cases} | extra
            row = by_rule[rule]
            assert row["residents_flagged"] == len(residents)
            assert row["outreach_cases_opened"] == len(cases)
            assert row["consent_obtained"] == sum(1 for c in cases if c.ready)
            assert row["routed"] == sum(1 for c in cases if c.offers)
            helped = [c for c in cases if any(o.outcome in POSITIVE for o in c.offers)]
            assert row["positive_outcome"] == len(helped)
            returning = {f.resident_key for f in day.flags if f.returning}
            assert row["residents_reflagged_after_help"] == len(returning & residents)
        assert by_rule["arrears"]["flag_to_help_median_hours"] == 24.0
        levels = {(r["level"]): r for r in rules["assessment_levels"]}
        assert levels["high"]["cases_assessed"] == 2 and levels["high"]["positive_outcome"] == 1
        assert levels["medium"]["cases_assessed"] == 1 and levels["medium"]["positive_outcome"] == 0

        reach = (await reporting.report(council, "reach", period(day))).json()
        rows = {(r["dimension"], r["value"]): r for r in reach["reach"]}
        assert sum(r["cases"] for r in reach["reach"] if r["dimension"] == "area") == len(day.cases)
        # The outreach case never consented: its flag's band (17) and district show the gap.
        assert rows[("age_band", "0-17")]["flagged_no_consent"] == 1
        assert rows[("area", "E7")]["flagged_no_consent"] == 1
        assert rows[("language", "pl")]["cases"] == 1

        # Filters: an area, a need.
        e15 = (await reporting.report(council, "outcomes", {**period(day), "area": "e15"})).json()
        assert {r["area"] for r in e15["needs_by_area"]} == {"E15"}
        # A referral is in its case's area: the areas' referrals add up to the council's.
        e7 = (await reporting.report(council, "outcomes", {**period(day), "area": "E7"})).json()
        referred_with_area = [c for c in day.cases if c.source is not None and c.area]
        assert e15["repeat_referrals"][0]["referrals"] + e7["repeat_referrals"][0][
            "referrals"
        ] == len(referred_with_area)
        assert e15["repeat_referrals"][0]["repeat_within_90_days"] == 1
        food = (await reporting.report(council, "outcomes", {**period(day), "need": "food"})).json()
        assert {r["need"] for r in food["referrals_by_source_and_need"]} == {"food"}
        assert {r["need"] for r in food["outcomes_by_need_and_partner"]} == {"food"}

        # Each table as CSV.
        response = await reporting.report(
            council, "outcomes", {**period(day), "format": "csv", "table": "offer_responses"}
        )
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/csv"
        )
        table = list(csv.DictReader(io.StringIO(response.text)))
        assert {(r["response"], r["reason"]): int(r["offers"]) for r in table} == expected_outcomes(
            day
        )["offer_responses"]
        reach_csv = await reporting.report(council, "reach", {**period(day), "format": "csv"})
        assert reach_csv.status_code == 200 and reach_csv.text.startswith("dimension,value,cases")

        # No identifier, name, contact or free text anywhere in the model.
        held = await reporting.scan()
        secret = reporting.settings.resident_key_secret.get_secret_value()
        for case in day.cases:
            for identifier in (
                case.id,
                case.referral_id,
                case.resident_key,
                *(o.id for o in case.offers),
            ):
                assert identifier not in held
                assert tombstone(secret, identifier) not in held
        for private in ("Ada", "Example", "020 7946", "1AA", "helped"):
            assert private not in held


async def test_a_stopped_consumer_group_catches_up_and_duplicates_change_nothing(
    reporting: Reporting, publisher: Publisher
) -> None:
    council = unique_council()
    reporting.settings.councils.append(council)
    secret = reporting.settings.resident_key_secret.get_secret_value()
    first, later = a_day(council, secret), a_day(council, secret)
    group = new_group()
    async with reporting.consumer(group):
        await send(publisher, first)
        await until_outcomes(reporting, first)
    # Stopped: the rest of the day arrives, partners' events first, each sent twice (a
    # producer's retry is a new event id: the upserts, not the inbox, keep it once).
    events = later.events()
    random.Random(7).shuffle(events)
    resent = [(await publisher.send(payload, subject=key)).id for payload, key in events + events]
    both = Day(council, first.start, first.cases + later.cases, first.flags + later.flags, secret)
    both.sent = [*first.sent, *resent]
    stale = (await reporting.report(council, "outcomes", period(both))).json()
    assert observed_outcomes(stale) == expected_outcomes(first)
    async with reporting.consumer(group) as resumed:
        await until_outcomes(reporting, both)
        # The same event again (redelivered): the inbox skips it.
        baseline = resumed.stats["duplicate"]
        payload, key = first.events()[-1]
        sent = await publisher.send(payload, subject=key)
        await publisher.resend(sent)

        async def skipped() -> bool:
            return resumed.stats["duplicate"] >= baseline + 1

        await wait_for(skipped, what="the redelivery to be skipped")
        again = (await reporting.report(council, "outcomes", period(both))).json()
        assert observed_outcomes(again) == expected_outcomes(both)


async def test_an_erasure_cuts_the_link_and_keeps_the_figures(
    reporting: Reporting, publisher: Publisher
) -> None:
    council = unique_council()
    reporting.settings.councils.append(council)
    secret = reporting.settings.resident_key_secret.get_secret_value()
    day = a_day(council, secret)
    async with reporting.consumer(new_group()):
        await send(publisher, day)
        before = await until_outcomes(reporting, day)
        erased = day.cases[0]
        await publisher.send(
            ErasureRequested(
                request_id=str(uuid.uuid4()),
                council=council,
                case_ids=[erased.id],
                resident_keys=[erased.resident_key],
                ground="objection",
                requested_at=utc_now(),
            ),
            subject=str(uuid.uuid4()),
        )
        # The keyed references of the case, the resident, her referral and her offers: a
        # referrer and a partner still hold the ids they derive from.
        refs = (
            reference(secret, "case", erased.id),
            reference(secret, "resident", erased.resident_key),
            reference(secret, "referral", erased.referral_id),
            *(reference(secret, "offer", o.id) for o in erased.offers),
        )
        assert len(erased.offers) == 1
        held = await reporting.scan()
        assert all(ref in held for ref in refs)  # they were there

        async def unlinked() -> bool:
            held = await reporting.scan()
            return not any(ref in held for ref in refs)

        await wait_for(unlinked, what="the erased case's references to go")
        after = (await reporting.report(council, "outcomes", period(day))).json()
        assert observed_outcomes(after) == observed_outcomes(before)
        # Her rows' times are kept to the (London) day, none left to the minute: the cases
        # and referrals of the resident referred twice (hers), and the erased case's offer.
        hers = (
            "SELECT resident_ref FROM reporting_referrals WHERE council = :council"
            " GROUP BY resident_ref HAVING count(*) = 2"
        )
        async with reporting.engine.connect() as connection:
            cases = (
                await connection.execute(
                    text(
                        "SELECT r.case_ref, r.received_at, c.opened_at FROM reporting_referrals r"
                        " JOIN reporting_cases c ON c.case_ref = r.case_ref"
                        f" WHERE r.council = :council AND r.resident_ref IN ({hers})"
                    ),
                    {"council": council},
                )
            ).all()
            offers = (
                await connection.execute(
                    text(
                        "SELECT offered_at, accepted_at, outcome_at FROM reporting_offers"
                        " WHERE case_ref = ANY(:cases) AND outcome IS NOT NULL"
                    ),
                    {"cases": [row[0] for row in cases]},
                )
            ).all()
        assert len(cases) == 2 and len(offers) == 1, (cases, offers)
        for at in [*(t for row in cases for t in row[1:]), *offers[0]]:
            london = at.astimezone(ZoneInfo("Europe/London"))
            assert (london.hour, london.minute, london.second) == (0, 0, 0), (cases, offers)


async def test_another_councils_figures_never_show(
    reporting: Reporting, publisher: Publisher
) -> None:
    council, other = unique_council(), unique_council()
    reporting.settings.councils.extend([council, other])
    secret = reporting.settings.resident_key_secret.get_secret_value()
    day = a_day(council, secret)
    async with reporting.consumer(new_group()):
        await send(publisher, day)
        await until_outcomes(reporting, day)
    query = period(day)
    # The other council's managers: as absent as another council's case.
    for name in ("outcomes", "rules", "reach"):
        response = await reporting.report(council, name, query, reporting.token(other))
        assert response.status_code == 404, response.text
    ig = await reporting.report(
        council, "rules", query, reporting.token(council, Role.INFORMATION_GOVERNANCE)
    )
    assert ig.status_code == 200
    caseworker = await reporting.report(
        council, "outcomes", query, reporting.token(council, Role.CASEWORKER)
    )
    assert caseworker.status_code == 403
    operator = await reporting.report(
        council, "outcomes", query, reporting.token("x", Role.OPERATOR, kind="operator")
    )
    assert observed_outcomes(operator.json()) == expected_outcomes(day)
    # Its own figures are empty: nothing of the first council's.
    own = (await reporting.report(other, "outcomes", query, reporting.token(other))).json()
    assert own["referrals_by_source_and_need"] == [] and own["offer_responses"] == []
    reach = (await reporting.report(other, "reach", query, reporting.token(other))).json()
    assert reach["reach"] == []


@pytest.mark.parametrize(
    ("query", "field_name"),
    [
        ({"from": "2026-12-10", "to": "2026-12-01"}, "from"),
        ({"from": "not-a-date"}, "from"),
        ({"from": "0"}, "from"),  # not 1 January 1970, seconds after
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        # Dates beyond what a period may take: 422s, not an overflow's 500.
        ({"to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"to": "0001-01-05"}, "to"),
        ({"from": "1999-12-31"}, "from"),
        ({"need": "pizza"}, "need"),
        ({"area": "not an area"}, "area"),
        ({"format": "xml"}, "format"),
        ({"format": "csv"}, "table"),
        ({"format": "csv", "table": "nonsense"}, "table"),
    ],
)
async def test_bad_queries_are_422s_naming_the_field(
    reporting: Reporting, query: dict[str, str], field_name: str
) -> None:
    council = unique_council()
    response = await reporting.report(council, "outcomes", query)
    assert response.status_code == 422, response.text
    assert field_name in response.text
    bad_council = await reporting.client.get(
        "/v1/reports/newham/outcomes", headers=reporting.token(council)
    )
    assert bad_council.status_code == 422 and "council" in bad_council.text

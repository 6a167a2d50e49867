"""Routing that never gives up on a resident, end to end: the three services as separate
processes (``upstream up``) over the real broker and PostgreSQL, driven through their HTTP
APIs only, on one stack whose clock the tests can move (``UPSTREAM_CLOCK_FILE``).

- A flagged resident's need waits for a place, is offered when one frees, is met, and the
  same signals sent again do not flag them again (only a worse one does).
- A need no service could take is routed by itself once a service that can is added.
- A high-urgency offer made on a Friday afternoon expires on Monday afternoon: one working
  day, not 24 clock hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from tests.e2e.stack import NEWHAM, Stack, referral, running_stack

pytestmark = pytest.mark.e2e
LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # No cooling-off after a flag: only the help recorded can keep the same signals from
    # flagging the resident again.
    settings = {"UPSTREAM_FLAG_COOLING_OFF_DAYS": "0"}
    with running_stack(tmp_path_factory, "never-gives-up", settings, settable_clock=True) as s:
        yield s
        s.set_clock(None)


def eviction_feed(*rows: tuple[str, str, str]) -> str:
    """A council feed of eviction notices for Efe Okonkwo: (observed on, notice type, notice
    date) each."""
    header = (
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
        "notice_type,notice_date\n"
    )
    return header + "".join(
        f"eviction_notice,{NEWHAM},Efe,Okonkwo,1990-01-20,E16 1AB,newham-housing,"
        f"{observed},{notice},{notice_date}\n"
        for observed, notice, notice_date in rows
    )


def outreach_cases(stack: Stack) -> list[dict[str, Any]]:
    items = stack.call("GET", "referrals", "/v1/cases?origin=flag", stack.caseworker)["items"]
    return [i for i in items if i["resident_name"] == "Efe Okonkwo"]


def test_a_flagged_resident_waits_for_a_place_is_helped_and_is_not_flagged_again(
    stack: Stack,
) -> None:
    # The only housing service has one place, and another resident's case takes it.
    housing = stack.add_partner("newham-housing-advice", ["housing"], capacity=1)
    other = stack.refer(referral("Gbenga", ["housing"], family="Bello"))["case_id"]
    taken = stack.offered_to(housing, other)

    days_ago = (date.today() - timedelta(days=10)).isoformat()
    notice = (days_ago, "section_21", days_ago)
    assert stack.import_signals(eviction_feed(notice))["flagged"] == 1
    case_id = stack.until(lambda: outreach_cases(stack), "an outreach case")[0]["id"]
    assert stack.case(case_id)["status"] == "awaiting_consent"
    stack.call(
        "POST",
        "referrals",
        f"/v1/cases/{case_id}/consent",
        stack.caseworker,
        json={
            "given_by": "the resident",
            "method": "verbal",
            "given_at": (datetime.now(LONDON) - timedelta(minutes=1)).isoformat(),
            "partner_kinds": ["any_voluntary"],
            "needs": ["housing"],
        },
    )
    # Every service that could take it is full: it waits, it is not unroutable.
    waiting = stack.until_need(case_id, "housing", "waiting_for_capacity")
    assert waiting["status"] == "ready_for_routing" and waiting["unroutable_reasons"] in ([], None)

    # The place frees (the other resident's support ends): the waiting need is offered.
    stack.accept(housing, taken["id"])
    stack.record_outcome(housing, taken["id"])
    offer = stack.offered_to(housing, case_id)
    assert offer["packet"]["first_name"] == "Efe"
    offered = stack.until_need(case_id, "housing", "offered")
    (need,) = offered["need_progress"]
    assert {"waiting_for_capacity", "offered"} <= set(need["times"])
    assert need["times"]["waiting_for_capacity"] <= need["times"]["offered"]

    stack.accept(housing, offer["id"])
    stack.until_need(case_id, "housing", "accepted")
    stack.record_outcome(housing, offer["id"], "support_provided")
    closed = stack.until_status(case_id, "closed")
    assert closed["outcome"] == "support_provided"

    # The risk service has the outcome and the close (its consumer has committed past them):
    # the same notice sent again (the same row, and next week's feed saying no more) does
    # not flag Efe again, though no cooling-off holds it back.
    stack.until_consumed("risk", "partners.offers.v1", producer="partners")
    stack.until_consumed("risk", "referrals.cases.v1", producer="referrals")
    week_later = (date.today() - timedelta(days=3)).isoformat()
    again = stack.import_signals(eviction_feed(notice, (week_later, "section_21", days_ago)))
    assert again["flagged"] == 0 and again["rows_rejected"] == 0
    # A worse one does (the notice has become a possession order): Efe is back.
    worse = stack.import_signals(eviction_feed((week_later, "possession_order", days_ago)))
    assert worse["flagged"] == 1
    cases = stack.until(
        lambda: len(found := outreach_cases(stack)) == 2 and found, "a second outreach case"
    )
    (returning,) = [c for c in cases if c["id"] != case_id]
    assert stack.case(returning["id"])["assessment"]["level"] == "crisis"


def test_an_unroutable_need_is_routed_once_a_service_that_can_take_it_is_added(
    stack: Stack,
) -> None:
    case_id = stack.refer(referral("Hana", ["employment_and_skills"], family="Yilmaz"))["case_id"]
    unroutable = stack.until_need(case_id, "employment_and_skills", "unroutable")
    assert unroutable["status"] == "unroutable"
    assert "employment and skills" in unroutable["unroutable_reasons"][0]

    jobs = stack.add_partner("newham-jobs-club", ["employment_and_skills"])
    offer = stack.offered_to(jobs, case_id)  # nobody asked to route it again
    assert offer["need"] == "employment_and_skills"
    assert stack.until_status(case_id, "offered")["need_progress"][0]["status"] == "offered"


def friday_before_a_plain_weekend() -> date:
    """A Friday at least a week ago with no bank holiday on it or the Monday after: in the
    past, so times the API checks against the real clock (consent given) stay plausible."""
    bank_holidays = holidays.country_holidays("GB", subdiv="ENG")
    day = date.today() - timedelta(days=7)
    while day.weekday() != 4 or day in bank_holidays or day + timedelta(days=3) in bank_holidays:
        day -= timedelta(days=1)
    return day


def test_a_friday_afternoon_high_urgency_offer_expires_on_monday_afternoon(stack: Stack) -> None:
    friday = friday_before_a_plain_weekend()
    monday = friday + timedelta(days=3)
    friday_4pm = datetime.combine(friday, time(16), LONDON)
    try:
        stack.set_clock(friday_4pm)
        carers = stack.add_partner("newham-carers-centre", ["carers_support"])
        body = referral(
            "Ife",
            ["carers_support"],
            urgency="high",
            family="Musa",
            consent_given_at=friday_4pm - timedelta(days=1),
        )
        case_id = stack.refer(body)["case_id"]
        offer = stack.offered_to(carers, case_id)
        # One working day: Friday's last hour and Monday's first seven (09:00 to 17:00).
        respond_by = datetime.fromisoformat(offer["respond_by"]).astimezone(LONDON)
        assert respond_by.date() == monday
        assert time(16) <= respond_by.time() < time(16, 5)
        # The partner sees it first; the case mirrors it once referrals has its event.
        mirrored = stack.until(lambda: stack.case(case_id)["offers"], "the offer on the case")
        assert mirrored[0]["status"] == "offered"

        monday_4_10pm = datetime.combine(monday, time(16, 10), LONDON)
        stack.set_clock(monday_4_10pm)
        expired = stack.until(
            lambda: (c := stack.case(case_id))["offers"][0]["status"] == "expired" and c,
            "the offer to expire",
        )
        assert stack.inbox(carers) == []
        # Nobody else could take it: back to the council, on Monday afternoon (once partners
        # has looked again and said so: routing, then unroutable).
        assert len(expired["need_progress"]) == 1
        (need,) = stack.until_need(case_id, "carers_support", "unroutable")["need_progress"]
        since = datetime.fromisoformat(need["since"]).astimezone(LONDON)
        assert monday_4_10pm <= since < monday_4_10pm + timedelta(minutes=5)
    finally:
        stack.set_clock(None)

"""When placement gives up on a need, and how webhook deliveries are signed and retried.
No I/O."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.partners.domain.placement import RESTARTABLE, RouteRequestStatus, reason_to_give_up
from services.partners.domain.routing import Decision, route
from services.partners.domain.webhooks import (
    DeliveryStatus,
    after_attempt,
    backoff,
    encoded,
    secrets_in_force,
    signature_header,
    verify,
)
from shared.vocabulary import Need
from tests.unit.partners.test_routing import request, service

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_need_with_a_candidate_is_placed_until_the_partners_run_out() -> None:
    decision = route(request(), [service("a")])
    assert reason_to_give_up(decision, Need.FOOD, attempts=2, max_offers=5) is None
    assert (
        reason_to_give_up(decision, Need.MONEY_AND_DEBT, attempts=5, max_offers=5)
        == "5 partners were offered money and debt and none took it"
    )


def test_no_candidate_gives_the_routing_reason() -> None:
    decision = route(request(), [])
    assert reason_to_give_up(decision, Need.FOOD, 0, 5) == "no service meets the need for food"
    assert reason_to_give_up(Decision(()), Need.FOOD, 0, 5) == "no partner can take food"


def test_unroutable_and_closed_needs_start_again() -> None:
    assert frozenset({RouteRequestStatus.UNROUTABLE, RouteRequestStatus.CLOSED}) == RESTARTABLE


@pytest.mark.parametrize("code", [200, 202, 299])
def test_a_2xx_answer_delivers(code: int) -> None:
    result = after_attempt(2, code, None, max_attempts=8, now=NOW)
    assert (result.status, result.attempts, result.last_status_code) == (
        DeliveryStatus.DELIVERED,
        3,
        code,
    )
    assert result.last_error is None and result.next_attempt_at is None


def test_anything_else_is_retried_with_backoff_until_the_last_attempt() -> None:
    failed = after_attempt(0, 500, None, max_attempts=3, now=NOW)
    assert (failed.status, failed.last_error) == (DeliveryStatus.PENDING, "answered 500")
    assert failed.next_attempt_at == NOW + timedelta(seconds=10)
    timeout = after_attempt(1, None, "ReadTimeout: slow", max_attempts=3, now=NOW)
    assert (timeout.status, timeout.last_error) == (DeliveryStatus.PENDING, "ReadTimeout: slow")
    assert timeout.next_attempt_at == NOW + timedelta(seconds=20)
    last = after_attempt(2, 404, None, max_attempts=3, now=NOW)
    assert (last.status, last.attempts) == (DeliveryStatus.FAILED, 3)


def test_backoff_doubles_and_is_capped_at_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(30) == timedelta(hours=1)


def test_a_rotated_secret_signs_until_it_lapses() -> None:
    assert secrets_in_force("new", "old", NOW + timedelta(hours=1), NOW) == ["new", "old"]
    assert secrets_in_force("new", "old", NOW - timedelta(seconds=1), NOW) == ["new"]
    assert secrets_in_force("new", None, None, NOW) == ["new"]


def test_signatures_verify_only_with_the_secret_the_body_and_a_recent_time() -> None:
    body, now = encoded({"b": 1, "a": [1, 2]}), int(time.time())
    assert body == b'{"a":[1,2],"b":1}'
    header = signature_header(["new", "old"], now, body)
    assert verify("new", header, body, now=now) and verify("old", header, body, now=now)
    assert not verify("other", header, body, now=now)
    assert not verify("new", header, body + b" ", now=now)
    assert not verify("new", header, body, now=now + 301)

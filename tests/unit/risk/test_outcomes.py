"""When help arrived (``domain/outcomes.py``): which signals a need's help addresses, which
later signals are worse, and which still count towards a flag."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.risk.domain.outcomes import (
    ADDRESSED_BY,
    Help,
    SignalStanding,
    after_help,
    helped,
    is_returning,
    is_worse,
    types_addressed,
)
from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from shared.vocabulary import Need, Outcome

T = SignalType
DAY = date(2026, 11, 2)


def fact(kind: SignalType, on: date = DAY, **attributes: object) -> SignalFact:
    return SignalFact(kind, attributes, on, on + timedelta(days=180))


def test_every_signal_type_is_addressed_by_some_need_and_only_help_that_arrived_counts() -> None:
    assert set(ADDRESSED_BY) == set(SignalType)
    assert T.EVICTION_NOTICE in types_addressed(Need.HOUSING)
    assert T.EVICTION_NOTICE not in types_addressed(Need.FOOD)
    assert {o for o in Outcome if helped(o)} == {
        Outcome.SUPPORT_PROVIDED,
        Outcome.PARTLY_RESOLVED,
    }


def test_worse_means_more_a_later_stage_or_another_fact() -> None:
    arrears = {"weeks": 8, "amount": "900.00"}
    assert not is_worse(T.RENT_ARREARS, {"weeks": 8, "amount": 900}, arrears)
    assert not is_worse(T.RENT_ARREARS, {"weeks": 6, "amount": "800"}, arrears)
    assert is_worse(T.RENT_ARREARS, {"weeks": 9, "amount": "900"}, arrears)
    assert is_worse(T.RENT_ARREARS, {"weeks": 8, "amount": "950.5"}, arrears)
    notice = {"notice_type": "section_8", "notice_date": "2026-10-01"}
    assert not is_worse(T.EVICTION_NOTICE, dict(notice), notice)
    assert is_worse(T.EVICTION_NOTICE, {**notice, "notice_type": "warrant"}, notice)
    assert is_worse(T.EVICTION_NOTICE, {**notice, "notice_date": "2026-11-20"}, notice)
    assert not is_worse(T.EVICTION_NOTICE, {**notice, "notice_type": "section_21"}, notice)
    tax = {"amount": 300, "stage": "summons"}
    assert is_worse(T.COUNCIL_TAX_ARREARS, {"amount": 300, "stage": "enforcement"}, tax)
    assert not is_worse(T.COUNCIL_TAX_ARREARS, {"amount": 200, "stage": "reminder"}, tax)
    gas = {"utility": "gas", "self_disconnection": False}
    assert is_worse(T.DISCONNECTION_RISK, {"utility": "gas", "self_disconnection": True}, gas)
    assert is_worse(T.DISCONNECTION_RISK, {"utility": "water"}, gas)
    assert not is_worse(T.BEREAVEMENT, {}, {})


def test_after_help_only_new_and_worse_signals_count() -> None:
    handled = fact(T.RENT_ARREARS, weeks=8, amount=900)
    same = fact(T.RENT_ARREARS, DAY + timedelta(days=30), weeks=8, amount=900)
    worse = fact(T.RENT_ARREARS, DAY + timedelta(days=31), weeks=12, amount=1400)
    new = fact(T.JOB_LOSS, DAY + timedelta(days=5))
    helped_at = datetime(2026, 11, 10, tzinfo=UTC)
    after = after_help([handled, same, worse, new], Help((handled,), helped_at))
    assert after.counting == [worse, new]
    assert [s for _, s in after.standing] == [
        SignalStanding.HANDLED,
        SignalStanding.SAME_AS_HANDLED,
        SignalStanding.WORSE,
        SignalStanding.NEW,
    ]
    never_helped = after_help([handled, new], None)
    assert never_helped.counting == [handled, new]


def test_a_flag_soon_after_help_is_a_returning_resident() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    window = timedelta(days=180)
    assert is_returning(Help((), at), at + timedelta(days=179), window)
    assert not is_returning(Help((), at), at + timedelta(days=181), window)
    assert not is_returning(None, at, window)

"""The risk service's handlers: which payloads they take, and the use case each one calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.risk import handlers
from services.risk.domain.rules import ReferralFacts
from services.risk.service_layer import assessments, outcomes
from shared.events.payloads import (
    CaseClosed,
    CaseOpened,
    ErasureRequested,
    OutcomeRecorded,
    ReferralReceived,
    ResidentsMerged,
    ResidentsUnmerged,
    SubjectAccessRequested,
)
from shared.vocabulary import Need, Outcome

RECEIVED = datetime(2026, 11, 22, 9, tzinfo=UTC)


def test_each_consumed_payload_has_its_handler_named_for_what_happened() -> None:
    assert {payload: handler.__name__ for payload, handler in handlers.EVENT_HANDLERS} == {
        ReferralReceived: "on_referral_received",
        CaseOpened: "on_case_opened",
        CaseClosed: "on_case_closed",
        ResidentsMerged: "on_residents_merged",
        ResidentsUnmerged: "on_residents_unmerged",
        OutcomeRecorded: "on_outcome_recorded",
        SubjectAccessRequested: "on_subject_access_requested",
        ErasureRequested: "on_erasure_requested",
    }


async def test_a_partners_outcome_is_recorded_on_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []

    async def record_outcome(uow: object, command: outcomes.OutcomeToRecord) -> None:
        calls.append(command)

    monkeypatch.setattr(outcomes, "record_outcome", record_outcome)
    event = OutcomeRecorded(
        offer_id="offer-1",
        case_id="case-1",
        need=Need.HOUSING,
        partner_id="partner-1",
        outcome=Outcome.SUPPORT_PROVIDED,
        at=RECEIVED,
    )
    uow: Any = object()
    await handlers.on_outcome_recorded(event, uow)
    assert calls == [
        outcomes.OutcomeToRecord("case-1", Need.HOUSING, Outcome.SUPPORT_PROVIDED, RECEIVED)
    ]


async def test_a_received_referral_is_assessed_with_its_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []

    async def assess_referral(uow: object, command: assessments.ReferralToAssess) -> None:
        calls.append((uow, command))

    monkeypatch.setattr(assessments, "assess_referral", assess_referral)
    uow: Any = object()
    await handlers.on_referral_received(
        ReferralReceived(
            case_id="case-1",
            referral_id="referral-1",
            council="E09000025",
            resident_keys=["k1", "k2"],
            age_years=42,
            needs=["food"],
            circumstances=["children_in_household"],
            urgency="medium",
            received_at=RECEIVED,
        ),
        uow,
    )
    assert calls == [
        (
            uow,
            assessments.ReferralToAssess(
                case_id="case-1",
                council="E09000025",
                resident_keys=["k1", "k2"],
                referral=ReferralFacts(
                    circumstances=("children_in_household",),
                    needs=("food",),
                    urgency="medium",
                    age=42,
                ),
                received_at=RECEIVED,
            ),
        )
    ]


async def test_a_referral_with_only_what_its_payload_requires_is_assessed_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resident named only by name has no key: the referral is still assessed, on itself."""
    calls: list[assessments.ReferralToAssess] = []

    async def assess_referral(uow: object, command: assessments.ReferralToAssess) -> None:
        calls.append(command)

    monkeypatch.setattr(assessments, "assess_referral", assess_referral)
    minimal = ReferralReceived.model_validate(
        {
            "case_id": "case-1",
            "referral_id": "referral-1",
            "council": "E09000025",
            "resident_keys": [],
            "needs": [],
            "urgency": "none",
            "received_at": RECEIVED.isoformat(),
        }
    )
    uow: Any = object()
    await handlers.on_referral_received(minimal, uow)
    (command,) = calls
    assert command.resident_keys == [] and command.referral == ReferralFacts(urgency="none")

"""Erasure's pure parts: when Article 17(3) refuses it, the tombstones, which identifiers an
event names, and the guard that turns an event about an erased resident into a no-op."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.referrals.domain.erasure import LIVE_OFFER, SAFEGUARDING, CaseFacts, refusal
from shared import erasure
from shared.erasure import guarded, identifiers_in, tombstone
from shared.events.payloads import (
    CaseReadyForRouting,
    ErasureRequested,
    ResidentFlagged,
    ResidentsMerged,
)
from shared.messaging.handlers import EventHandlers


def _case(
    status: str = "assessed", needs: tuple[str, ...] = ("food",), **changes: Any
) -> CaseFacts:
    values: dict[str, Any] = {"urgency": "low", "risk_level": None, "offer_statuses": ()}
    return CaseFacts(status=status, needs=needs, **(values | changes))


def test_an_open_case_with_a_safeguarding_concern_is_not_erased() -> None:
    assert refusal([_case(needs=("food", "domestic_abuse"))]) == SAFEGUARDING
    assert refusal([_case(urgency="crisis")]) == SAFEGUARDING
    assert refusal([_case(risk_level="crisis")]) == SAFEGUARDING


def test_an_open_case_with_a_live_offer_is_not_erased() -> None:
    for live in ("offered", "accepted", "in_progress"):
        assert refusal([_case("offered", offer_statuses=("declined", live))]) == LIVE_OFFER


def test_closed_cases_and_open_ones_without_either_are_erased() -> None:
    assert refusal([]) is None
    assert refusal([_case("closed", needs=("domestic_abuse",), urgency="crisis")]) is None
    assert refusal([_case("withdrawn", offer_statuses=("offered",))]) is None
    assert refusal([_case(offer_statuses=("declined", "expired", "withdrawn"))]) is None


def test_a_tombstone_is_a_keyed_hash_never_the_identifier() -> None:
    case_id = "0b7f3c2e-2b7e-4f6a-9a44-0d5d2a6c9e11"
    stone = tombstone("secret", case_id)
    assert stone == tombstone("secret", case_id) and len(stone) == 64
    assert case_id not in stone and stone != tombstone("another secret", case_id)


def test_an_event_names_its_cases_and_keys_by_one_rule() -> None:
    merged = ResidentsMerged.model_construct(
        merged_resident_keys=["k1"], into_resident_keys=["k2", "k3"], merged_case_id="c1"
    )
    assert identifiers_in(merged) == ["k1", "k2", "k3", "c1"]
    assert identifiers_in(ResidentFlagged.model_construct(resident_key="k9")) == ["k9"]
    request = ErasureRequested.model_validate(
        {
            "request_id": "r",
            "council": "E09000025",
            "case_ids": ["c1", "c2"],
            "resident_keys": ["k1"],
            "ground": "objection",
            "requested_at": "2026-12-01T10:00:00Z",
        }
    )
    assert identifiers_in(request) == ["c1", "c2", "k1"]


@dataclass
class _Work:
    session: Any = None
    applied: list[str] = field(default_factory=list)
    event: Any = None


async def test_the_guard_skips_an_event_about_an_erased_case_and_applies_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    erased = {"gone"}

    async def erased_once_locked(
        session: Any, secret: str, ids: Any, keys: Any = (), written_at: Any = None
    ) -> bool:
        assert secret == "s"
        return bool(erased & (set(ids) | set(keys)))

    monkeypatch.setattr(erasure, "erased_once_locked", erased_once_locked)
    handlers = EventHandlers[Any]()

    @handlers.on(CaseReadyForRouting)
    async def on_ready(event: CaseReadyForRouting, uow: _Work) -> None:
        uow.applied.append(event.case_id)

    @handlers.on(ErasureRequested)
    async def on_erasure(event: ErasureRequested, uow: _Work) -> None:
        uow.applied.append(event.request_id)

    wrapped = dict(guarded(handlers, lambda uow: "s", exempt=[ErasureRequested]))
    assert set(wrapped) == {CaseReadyForRouting, ErasureRequested}
    work = _Work()
    ready = CaseReadyForRouting.model_construct(case_id="gone")
    await wrapped[CaseReadyForRouting](ready, work)
    await wrapped[CaseReadyForRouting](CaseReadyForRouting.model_construct(case_id="kept"), work)
    request = ErasureRequested.model_construct(request_id="r", case_ids=["gone"])
    await wrapped[ErasureRequested](request, work)  # exempt: a replayed erasure erases again
    assert work.applied == ["kept", "r"]


async def test_an_erased_key_refuses_only_what_was_written_before_its_erasure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resident keys come from identity: the same person referred again has them again, so
    an event written after the erasure is applied; case ids are never reused: refused
    whenever written. The lock and the look are one call: ``erased_once_locked``, whose
    order is tested on PostgreSQL (tests/integration/test_erasure.py)."""
    erased_at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    stones = {"k1": erased_at, "gone": erased_at}

    async def erased_once_locked(
        session: Any, secret: str, ids: Any, keys: Any = (), written_at: Any = None
    ) -> bool:
        session.extend(ids)
        keys = set(keys)
        return any(i in stones for i in ids if i not in keys) or any(
            k in stones and (written_at is None or stones[k] >= written_at) for k in keys
        )

    monkeypatch.setattr(erasure, "erased_once_locked", erased_once_locked)
    handlers = EventHandlers[Any]()

    @handlers.on(ResidentFlagged)
    async def on_flag(event: ResidentFlagged, uow: _Work) -> None:
        uow.applied.append(event.resident_key)

    @handlers.on(CaseReadyForRouting)
    async def on_ready(event: CaseReadyForRouting, uow: _Work) -> None:
        uow.applied.append(event.case_id)

    wrapped = dict(guarded(handlers, lambda uow: "s"))
    flag = ResidentFlagged.model_construct(resident_key="k1")
    ready = CaseReadyForRouting.model_construct(case_id="gone")
    for written, expected in ((erased_at - timedelta(seconds=1), []), (erased_at, [])):
        work = _Work(session=[], event=SimpleNamespace(time=written))
        await wrapped[ResidentFlagged](flag, work)
        assert work.applied == expected and work.session == ["k1"]
    later = _Work(session=[], event=SimpleNamespace(time=erased_at + timedelta(seconds=1)))
    await wrapped[ResidentFlagged](flag, later)
    await wrapped[CaseReadyForRouting](ready, later)  # a case id: refused whenever written
    assert later.applied == ["k1"]

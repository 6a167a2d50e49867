"""Gaps in service: a need of a council's residents that no partner can meet (unroutable),
or that has waited for a place longer than the threshold (in working hours). A gap is an
*episode*: it opens once, stays open while any need is in it, and closes when none is; one
that opens again later is a new episode. Pure: the service layer reads and stores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from services.partners.domain.offers import WorkingWeek, add_working_hours
from services.partners.domain.placement import RouteRequestStatus
from services.partners.domain.routing import NO_AGREEMENT
from shared.events.payloads import GapReason
from shared.vocabulary import Need

# Age bands a council plans services by; ages themselves never leave a case.
AGE_BANDS = ((0, 17, "0-17"), (18, 24, "18-24"), (25, 64, "25-64"), (65, 150, "65+"))


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    return next((band for low, high, band in AGE_BANDS if low <= age <= high), None)


class GapKey(NamedTuple):
    council: str
    need: Need
    reason: GapReason


@dataclass(frozen=True)
class NeedInGap:
    """One need of a case that is unroutable or waiting: only what a gap reports of it."""

    council: str
    need: Need
    status: RouteRequestStatus
    since: datetime  # waiting since, or unroutable since
    why: str | None  # the unroutable (or waiting) reason, in plain words
    district: str | None = None
    language: str | None = None
    age: int | None = None

    @classmethod
    def of(
        cls,
        council: str,
        need: str,
        status: str,
        since: datetime,
        why: str | None,
        packet: Mapping[str, Any] | None,
    ) -> NeedInGap:
        packet = packet or {}
        return cls(
            council=council,
            need=Need(need),
            status=RouteRequestStatus(status),
            since=since,
            why=why,
            district=packet.get("postcode_district"),
            language=packet.get("preferred_language"),
            age=packet.get("age_years"),
        )


def key_of(need: NeedInGap, now: datetime, waited: float, week: WorkingWeek) -> GapKey | None:
    """The gap a need is in: unroutable; waiting past ``waited`` working hours; or none."""
    if need.status is RouteRequestStatus.UNROUTABLE:
        if need.why is not None and need.why.startswith(NO_AGREEMENT):  # routing's words
            return GapKey(need.council, need.need, GapReason.NO_AGREEMENT)
        return GapKey(need.council, need.need, GapReason.UNROUTABLE)
    if need.status is RouteRequestStatus.WAITING and (
        add_working_hours(need.since, waited, week) <= now
    ):
        return GapKey(need.council, need.need, GapReason.WAITING_TOO_LONG)
    return None


def gaps(
    needs: Iterable[NeedInGap], now: datetime, waited: float, week: WorkingWeek
) -> dict[GapKey, list[NeedInGap]]:
    """The gaps these needs are in, and the needs in each."""
    found: dict[GapKey, list[NeedInGap]] = {}
    for need in needs:
        key = key_of(need, now, waited, week)
        if key is not None:
            found.setdefault(key, []).append(need)
    return found


@dataclass(frozen=True)
class GapSummary:
    """What a gap event says: areas, languages and age bands, counts and the longest wait;
    never who."""

    detail: str | None
    postcode_districts: list[str]
    languages: list[str]
    age_bands: list[str]
    residents_waiting: int
    waiting_since: datetime
    longest_wait_hours: float


def summarise(key: GapKey, needs: list[NeedInGap], now: datetime) -> GapSummary:
    oldest = min(need.since for need in needs)
    reasons = sorted({need.why for need in needs if need.why})
    if key.reason is GapReason.WAITING_TOO_LONG:
        words = key.need.value.replace("_", " ")
        detail: str | None = f"every {words} service that could help is full"
    else:
        detail = "; ".join(reasons[:3]) or None
    return GapSummary(
        detail=detail,
        postcode_districts=sorted({n.district for n in needs if n.district}),
        languages=sorted({n.language for n in needs if n.language}),
        age_bands=sorted({band for n in needs if (band := age_band(n.age))}),
        residents_waiting=len(needs),
        waiting_since=oldest,
        longest_wait_hours=round((now - oldest).total_seconds() / 3600, 1),
    )

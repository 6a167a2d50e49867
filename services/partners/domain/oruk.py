"""Our directory in the shape of Open Referral UK 3.0, and back. Empty optional fields are
omitted. Needs are the terms of one taxonomy, ``upstream-needs``; service areas are council
GSS codes (``extent_type: gss_code``) or postcode districts (``postcode_district``). Opening
hours are weekly ``schedules`` (``freq: WEEKLY``, ``byday``, ``opens_at``/``closes_at``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import time
from typing import Any

from services.partners.domain.offers import DAYS
from shared.vocabulary import Need

_NAMESPACE = uuid.UUID("6c1f7d02-3b47-4a8e-9c51-2f0d8e6a9b13")
TAXONOMY_ID = str(uuid.uuid5(_NAMESPACE, "taxonomy:upstream-needs"))
TAXONOMY = {
    "id": TAXONOMY_ID,
    "name": "upstream-needs",
    "description": "The needs Upstream routes residents' cases by",
    "version": "1",
}


def term_id(need: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"need:{need}"))


def taxonomy_term(need: str) -> dict[str, Any]:
    return {
        "id": term_id(need),
        "name": need,
        "description": f"Support with {need.replace('_', ' ')}",
        "taxonomy_id": TAXONOMY_ID,
        "taxonomy": "upstream-needs",
    }


NEED_BY_TERM = {term_id(n.value): n.value for n in Need}


def _child_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def organization(org: Mapping[str, Any]) -> dict[str, Any]:
    return _compact(
        {
            "id": org["id"],
            "name": org["name"],
            "description": org["description"],
            "email": org.get("email"),
            "website": org.get("website"),
        }
    )


def service_summary(service: Mapping[str, Any], org: Mapping[str, Any]) -> dict[str, Any]:
    """One-to-one fields only: the shape of a list item."""
    return _compact(
        {
            "id": service["id"],
            "organization_id": service["organization_id"],
            "name": service["name"],
            "description": service["description"],
            "status": service["status"],
            "url": service.get("url"),
            "email": service.get("email"),
            "minimum_age": service.get("minimum_age"),
            "maximum_age": service.get("maximum_age"),
            "last_modified": service["last_modified"].isoformat()
            if service.get("last_modified")
            else None,
            "organization": organization(org),
        }
    )


def service_full(service: Mapping[str, Any], org: Mapping[str, Any]) -> dict[str, Any]:
    sid = service["id"]
    areas = [
        {
            "id": _child_id(sid, "area", code),
            "service_id": sid,
            "name": code,
            "extent": code,
            "extent_type": "gss_code",
        }
        for code in service["councils"]
    ]
    areas += [
        {
            "id": _child_id(sid, "area", d),
            "service_id": sid,
            "name": d,
            "extent": d,
            "extent_type": "postcode_district",
        }
        for d in service["postcode_districts"]
    ]
    return _compact(
        {
            **service_summary(service, org),
            "service_areas": areas,
            "schedules": schedules(service),
            "languages": [
                {
                    "id": _child_id(sid, "language", code),
                    "service_id": sid,
                    "code": code,
                    "name": code,
                }
                for code in service["languages"]
            ],
            "contacts": [
                {
                    "id": _child_id(sid, "contact", str(i)),
                    "service_id": sid,
                    "name": c.get("name"),
                    "title": c.get("title"),
                    "email": c.get("email"),
                }
                for i, c in enumerate(service.get("contacts") or [])
            ],
            "attributes": [
                {
                    "id": _child_id(sid, "need", need),
                    "link_id": sid,
                    "link_type": "service",
                    "taxonomy_term_id": term_id(need),
                    "taxonomy_term": taxonomy_term(need),
                }
                for need in service["needs"]
            ],
        }
    )


def _clock(value: Any) -> time | None:
    """An ORUK ``opens_at``/``closes_at`` as a local wall-clock time ("10:00", "10:00:00";
    a zone suffix is dropped: opening hours are local), or None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return time.fromisoformat(value.strip()).replace(tzinfo=None)
    except ValueError:
        return None


def opening_hours(document: Mapping[str, Any]) -> tuple[list[dict[str, str]] | None, list[str]]:
    """The service's weekly opening hours from its ORUK ``schedules`` (one interval a day:
    the first schedule naming a day wins), and what could not be read, in words. Only
    weekly schedules (``freq: WEEKLY``, every week) with ``byday`` days and both times are
    read; monthly ones, other intervals and unreadable times are left out. None: no hours."""
    hours: dict[str, dict[str, str]] = {}
    ignored: list[str] = []
    for schedule in document.get("schedules") or []:
        if not isinstance(schedule, Mapping):
            ignored.append("a schedule that is not an object")
            continue
        label = f"schedule {schedule.get('id') or '?'}"
        weekly = str(schedule.get("freq") or "").upper() == "WEEKLY"
        if not weekly or schedule.get("interval") not in (None, 1):
            ignored.append(f"{label}: not every week (only freq WEEKLY, interval 1 is read)")
            continue
        opens, closes = _clock(schedule.get("opens_at")), _clock(schedule.get("closes_at"))
        if opens is None or closes is None or closes <= opens:
            ignored.append(f"{label}: no readable opens_at before closes_at")
            continue
        days = [d.strip().upper() for d in str(schedule.get("byday") or "").split(",") if d.strip()]
        for day in days:
            if day not in DAYS:
                ignored.append(f"{label}: day {day!r} not read")
            elif day in hours:
                ignored.append(f"{label}: {day} already has opening hours")
            else:
                hours[day] = {"day": day, "opens": opens.isoformat(), "closes": closes.isoformat()}
        if not days:
            ignored.append(f"{label}: no byday")
    ordered = [hours[day] for day in DAYS if day in hours]
    return ordered or None, ignored


def schedules(service: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The service's opening hours as ORUK weekly schedules, one a day."""
    sid = service["id"]
    return [
        {
            "id": _child_id(sid, "schedule", entry["day"]),
            "service_id": sid,
            "freq": "WEEKLY",
            "interval": 1,
            "byday": entry["day"],
            "opens_at": entry["opens"],
            "closes_at": entry["closes"],
        }
        for entry in service.get("opening_hours") or []
    ]


def from_service(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ORUK service (with its organization) as our organization and service values.
    Needs come from attributes whose taxonomy term is one of ours (by id or by name)."""
    org = document.get("organization") or {}
    needs = []
    for attribute in document.get("attributes") or []:
        term = attribute.get("taxonomy_term") or {}
        need = NEED_BY_TERM.get(attribute.get("taxonomy_term_id", "")) or (
            term.get("name") if term.get("name") in Need.__members__.values() else None
        )
        if need:
            needs.append(need)
    areas = document.get("service_areas") or []
    service = {
        "id": document["id"],
        "organization_id": org.get("id") or document.get("organization_id"),
        "name": document["name"],
        "description": document.get("description") or document["name"],
        "status": document.get("status", "active"),
        "url": document.get("url"),
        "email": document.get("email"),
        "minimum_age": document.get("minimum_age"),
        "maximum_age": document.get("maximum_age"),
        "needs": list(dict.fromkeys(needs)),
        "councils": [
            a.get("extent") or a.get("name") for a in areas if a.get("extent_type") == "gss_code"
        ],
        "postcode_districts": [
            a.get("extent") or a.get("name")
            for a in areas
            if a.get("extent_type") == "postcode_district"
        ],
        "languages": [
            lang.get("code") or lang.get("name")
            for lang in document.get("languages") or []
            if lang.get("code") or lang.get("name")
        ],
        "contacts": [
            {k: c[k] for k in ("name", "title", "email") if c.get(k)}
            for c in document.get("contacts") or []
        ],
    }
    organization_values = {
        "id": service["organization_id"],
        "name": org.get("name", ""),
        "description": org.get("description") or org.get("name", ""),
        "email": org.get("email"),
        "website": org.get("website"),
    }
    return organization_values, service

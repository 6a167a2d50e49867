"""The quick check of a feed row against the definition (the input policy and the models):
over many generated rows, valid and not, it returns exactly the Row the full check returns,
or stands aside; it is sure of the common rows; it stands aside when the models change.
No I/O."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.risk.domain import fast_rows
from services.risk.domain.feeds import (
    ResidentIdentifiers,
    Row,
    SignalIn,
    check,
    check_with_models,
)
from services.risk.domain.signals import SignalType
from services.risk.service_layer.reading import identity_json

TODAY = date.today()
RECENT = (TODAY - timedelta(days=3)).isoformat()

ATTRIBUTES: dict[str, dict[str, str]] = {
    "rent_arrears": {"weeks": "3", "amount": "420.50"},
    "council_tax_arrears": {"amount": "840", "stage": "enforcement"},
    "benefit_sanction": {"kind": "sanction"},
    "dhp_refused_or_ending": {"status": "ending"},
    "eviction_notice": {"notice_type": "section_21", "notice_date": RECENT},
    "disconnection_risk": {"utility": "gas"},
    "priority_services_register": {},
    "school_absence": {"percent": "40"},
    "hospital_discharge_unsupported": {},
    "bereavement": {},
    "job_loss": {},
}


def base_row(kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "council": "E09000025",
        "source": "newham-rent",
        "observed_on": RECENT,
        "resident": {
            "given_name": "Amina",
            "family_name": "Okafor",
            "date_of_birth": "1984-03-02",
            "postcode": "E15 4HT",
        },
        "attributes": dict(ATTRIBUTES[kind]),
    }


# Values that sit at the edges of what the policy and the models accept.
ODD = [
    "",
    " ",
    " padded ",
    "x",
    "E15 4HT",
    "e15 4ht",
    "E15",
    "SW1A 1AA",
    "GIR 0AA",
    "1984-03-02",
    "1899-12-31",
    "1900-01-01",
    "2100-12-31",
    "2101-01-01",
    "2026-02-30",
    "2026-2-3",
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661",  # Arabic-Indic digits
    TODAY.isoformat(),
    (TODAY + timedelta(days=1)).isoformat(),
    "2026-01-01T10:00:00",
    "0",
    "3",
    "03",
    "+3",
    "-1",
    "520",
    "521",
    "3.0",
    "420.5",
    "420.505",
    "1e3",
    "1000000",
    "1000000.01",
    "\u0661\u0662",
    "true",
    "false",
    "yes",
    "enforcement",
    "Enforcement",
    "summons",
    "sanction",
    "gas",
    "section_8",
    "E09000025",
    "E0900002",
    "X09000025",
    "e09000025",
    "123456789012",
    "1234567890123",
    "O'Brien-Smith",
    "José",
    "Иван",
    "王伟",
    "---",
    "\u0661\u0662\u0663",
    "tab\there",
    "line\nbreak",
    "bell\x07",
    "nul\x00",
    "del\x7f",
    "c1\x85",
    "nbsp\xa0",
    "surrogate\ud800",
    "x" * 101,
    "x" * 20_001,
]
SIGNAL_FIELDS = ["type", "council", "source", "observed_on", "expires_on", "extra"]
RESIDENT_FIELDS = [
    "given_name",
    "family_name",
    "date_of_birth",
    "postcode",
    "uprn",
    "council_reference",
    "address",
    "phone",
    "email",
    "nickname",
]
ATTRIBUTE_FIELDS = sorted({n for a in ATTRIBUTES.values() for n in a} | {"self_disconnection"})
NOT_TEXT = [None, 3, 3.5, True, [], {}, ["x"]]

# Values each field plainly accepts, so that many generated rows are valid in new ways.
PLAUSIBLE: dict[str, list[str]] = {
    "type": sorted(ATTRIBUTES),
    "council": ["E09000025", "E09000012", "W06000015", "S12000036"],
    "source": ["newham-rent", "x", "a" * 100, "DWP feed (monthly)", "Ünïcode source"],
    "observed_on": [RECENT, TODAY.isoformat(), "1900-01-01", "2024-02-29"],
    "expires_on": [(TODAY + timedelta(days=30)).isoformat(), "2100-12-31", RECENT],
    "given_name": ["Amina", "José", "Иван", "王伟", "O'Brien-Smith", "a" * 100, "Zoë"],
    "family_name": ["Okafor", "Nowak", "Da Silva", "Γιώργος", "محمد"],
    "date_of_birth": ["1900-01-01", "1984-03-02", TODAY.isoformat(), "2000-02-29"],
    "postcode": ["E15 4HT", "e154ht", "SW1A 1AA", "GIR0AA", "N16 0XX", "M1 1AE"],
    "uprn": ["1", "100023336956", "000000000001"],
    "council_reference": ["HB-22817", "r" * 64],
    "address": ["Flat 3, 12 Romford Road", "12 Green St\nStratford", "a" * 300],
    "phone": ["07700 900123", "+44 20 7946 0000"],
    "email": ["amina@example.org"],
    "weeks": ["0", "1", "8", "520", "007"],
    "amount": ["0", "0.5", "420.50", "999999.99", "1000000", "100000"],
    "stage": ["reminder", "final_notice", "summons", "liability_order", "enforcement"],
    "kind": ["sanction", "uc_deduction"],
    "status": ["refused", "ending"],
    "notice_type": ["section_21", "section_8", "possession_order", "warrant"],
    "notice_date": [RECENT, "1999-12-31"],
    "utility": ["gas", "electricity", "water"],
    "percent": ["0", "40", "100"],
}

values = st.one_of(st.sampled_from(ODD), st.text(max_size=12), st.sampled_from(NOT_TEXT))


def value_for(draw: st.DrawFn, name: str) -> Any:
    if name in PLAUSIBLE and draw(st.booleans()):
        return draw(st.sampled_from(PLAUSIBLE[name]))
    return draw(values)


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row = base_row(draw(st.sampled_from(sorted(ATTRIBUTES))))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["signal", "resident", "attributes", "drop"]))
        if where == "signal":
            name = draw(st.sampled_from(SIGNAL_FIELDS))
            row[name] = value_for(draw, name)
        elif where in ("resident", "attributes") and isinstance(row.get(where), dict):
            name = draw(
                st.sampled_from(RESIDENT_FIELDS if where == "resident" else ATTRIBUTE_FIELDS)
            )
            row[where][name] = value_for(draw, name)
        else:  # a field left out, even the resident or the attributes as a whole
            section = draw(st.sampled_from(["signal", "resident", "attributes"]))
            held = row if section == "signal" else row.get(section)
            if isinstance(held, dict) and held:
                held.pop(draw(st.sampled_from(sorted(held))))
    return row


def same(quick: Row, full: Row | list[Any]) -> bool:
    assert isinstance(full, Row), full
    return (
        quick == full
        and quick.signal.model_fields_set == full.signal.model_fields_set
        and quick.signal.resident.model_fields_set == full.signal.resident.model_fields_set
        and quick.signal.model_dump(mode="json") == full.signal.model_dump(mode="json")
        and type(quick.signal.attributes) is type(full.signal.attributes)
    )


def test_the_quick_check_is_on_for_the_models_it_was_written_for() -> None:
    assert fast_rows.QuickCheck(SignalIn, ResidentIdentifiers, Row).enabled


def test_it_stands_aside_when_the_models_change() -> None:
    class Wider(ResidentIdentifiers):
        nickname: str | None = None

    assert not fast_rows.QuickCheck(SignalIn, Wider, Row).enabled


@pytest.mark.parametrize("kind", sorted(ATTRIBUTES))
def test_it_is_sure_of_a_common_row_of_every_type_and_gives_the_full_checks_row(
    kind: str,
) -> None:
    raw = base_row(kind)
    quick = fast_rows.QuickCheck(SignalIn, ResidentIdentifiers, Row)(7, raw)
    assert quick is not None
    assert same(quick, check_with_models(7, raw))
    assert check(7, raw) == quick


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_it_returns_the_full_checks_row_or_stands_aside(raw: dict[str, Any]) -> None:
    quick = fast_rows.QuickCheck(SignalIn, ResidentIdentifiers, Row)(3, raw)
    full = check_with_models(3, raw)
    event("the quick check was sure" if quick is not None else "it stood aside")
    if quick is not None:
        assert same(quick, full), (raw, quick, full)
    assert check(3, raw) == full  # what the import sees, with the quick check in front
    for row in (quick, full):  # the identifiers sealed into a flag, as pydantic writes them
        if isinstance(row, Row):
            person = row.signal.resident
            assert identity_json(person) == person.model_dump(mode="json", exclude_none=True)


def test_it_never_refuses_it_stands_aside() -> None:
    raw = base_row("rent_arrears")
    raw["attributes"]["weeks"] = "-1"
    assert fast_rows.QuickCheck(SignalIn, ResidentIdentifiers, Row)(1, raw) is None
    refused = check(1, raw)
    assert isinstance(refused, list) and refused[0].field == "attributes.weeks"


def test_its_models_are_made_as_pydantic_makes_them() -> None:
    values = {"given_name": "Amina", "family_name": "Okafor", "date_of_birth": date(1984, 3, 2)}
    ours = fast_rows._construct(ResidentIdentifiers, dict(values))
    theirs = ResidentIdentifiers.model_construct(**values)
    assert ours == theirs and ours.model_fields_set == theirs.model_fields_set
    signal = {
        "type": SignalType.JOB_LOSS,
        "council": "E09000025",
        "resident": ours,
        "source": "dwp",
        "observed_on": TODAY,
    }
    made = fast_rows._construct(SignalIn, dict(signal))
    assert made == SignalIn.model_construct(**signal)
    assert made.attributes == {} and made.attributes is not SignalIn.model_fields["attributes"]

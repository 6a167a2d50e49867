"""The catalogue of data signals: what a council or partner feed may say about a resident.

Each type has its attributes (a pydantic model: checked on the way in, and the fields a rule
may read), a plain-English name, and how long a signal stays current unless the feed says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from json.encoder import encode_basestring_ascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.input_policy import IsoDate


class _Attributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RentArrears(_Attributes):
    weeks: int = Field(ge=0, le=520)
    amount: Decimal = Field(ge=0, le=1_000_000, decimal_places=2)


class CouncilTaxArrears(_Attributes):
    amount: Decimal = Field(ge=0, le=1_000_000, decimal_places=2)
    stage: Literal["reminder", "final_notice", "summons", "liability_order", "enforcement"]


class BenefitSanction(_Attributes):
    kind: Literal["sanction", "uc_deduction"]
    amount: Decimal | None = Field(default=None, ge=0, le=100_000, decimal_places=2)


class DiscretionaryHousingPayment(_Attributes):
    status: Literal["refused", "ending"]


class EvictionNotice(_Attributes):
    notice_type: Literal["section_21", "section_8", "possession_order", "warrant"]
    notice_date: IsoDate


class DisconnectionRisk(_Attributes):
    utility: Literal["gas", "electricity", "water"]
    self_disconnection: bool = False


class NoAttributes(_Attributes):
    pass


class SchoolAbsence(_Attributes):
    percent: int = Field(ge=0, le=100)


class SignalType(StrEnum):
    RENT_ARREARS = "rent_arrears"
    COUNCIL_TAX_ARREARS = "council_tax_arrears"
    BENEFIT_SANCTION = "benefit_sanction"
    DHP_REFUSED_OR_ENDING = "dhp_refused_or_ending"
    EVICTION_NOTICE = "eviction_notice"
    DISCONNECTION_RISK = "disconnection_risk"
    PRIORITY_SERVICES_REGISTER = "priority_services_register"
    SCHOOL_ABSENCE = "school_absence"
    HOSPITAL_DISCHARGE_UNSUPPORTED = "hospital_discharge_unsupported"
    BEREAVEMENT = "bereavement"
    JOB_LOSS = "job_loss"


@dataclass(frozen=True)
class SignalKind:
    attributes: type[_Attributes]
    name: str  # in plain English, for explanations and the transparency record
    current_for_days: int


CATALOGUE: dict[SignalType, SignalKind] = {
    SignalType.RENT_ARREARS: SignalKind(RentArrears, "rent arrears", 90),
    SignalType.COUNCIL_TAX_ARREARS: SignalKind(CouncilTaxArrears, "council tax arrears", 180),
    SignalType.BENEFIT_SANCTION: SignalKind(
        BenefitSanction, "a benefit sanction or Universal Credit deduction", 180
    ),
    SignalType.DHP_REFUSED_OR_ENDING: SignalKind(
        DiscretionaryHousingPayment, "a discretionary housing payment refused or ending", 90
    ),
    SignalType.EVICTION_NOTICE: SignalKind(EvictionNotice, "an eviction or possession notice", 180),
    SignalType.DISCONNECTION_RISK: SignalKind(
        DisconnectionRisk, "a risk of utility disconnection or self-disconnection", 60
    ),
    SignalType.PRIORITY_SERVICES_REGISTER: SignalKind(
        NoAttributes, "being on a utility's Priority Services Register", 365
    ),
    SignalType.SCHOOL_ABSENCE: SignalKind(SchoolAbsence, "persistent school absence", 120),
    SignalType.HOSPITAL_DISCHARGE_UNSUPPORTED: SignalKind(
        NoAttributes, "a hospital discharge without support in place", 60
    ),
    SignalType.BEREAVEMENT: SignalKind(NoAttributes, "a recent bereavement", 180),
    SignalType.JOB_LOSS: SignalKind(NoAttributes, "a recent job loss", 180),
}


def fields_of(signal_type: SignalType) -> set[str]:
    """What a rule may read of a signal: its attributes, and how many days ago it was seen."""
    return set(CATALOGUE[signal_type].attributes.model_fields) | {"days_ago", "observed_on"}


# -- the same fact is the same signal ----------------------------------------------------

# A signal's attributes as stored (JSON, keys sorted): what ``fingerprint`` hashes.
attributes_json = json.JSONEncoder(sort_keys=True, default=str).encode
_STRING_JSON = encode_basestring_ascii  # what json.dumps writes for a string


def fingerprint(key: str, signal_type: str, source: str, observed_on: date, attributes: str) -> str:
    """The same fact about the same resident is the same signal, whoever sends it again: the
    SHA-256 of ``json.dumps([key, type, source, observed on, attributes], sort_keys=True)``,
    ``key`` the resident's strongest key when it was stored and ``attributes`` already JSON
    (``attributes_json``), written out around it rather than decoded again: a feed of a
    million rows fingerprints each as it is read. The one formula: signals are stored by
    it, and a split profile (an undone merge) tells its signals by it."""
    fact = (
        f"[{_STRING_JSON(key)}, {_STRING_JSON(signal_type)}, {_STRING_JSON(source)}, "
        f"{_STRING_JSON(observed_on.isoformat())}, {attributes}]"
    )
    return hashlib.sha256(fact.encode()).hexdigest()


def stored_fingerprint(key: str, stored: Any) -> str:
    """``fingerprint`` of a stored signal (a row with its type, source, observed on and
    attributes as decoded from the database), as if ``key`` were its strongest key."""
    return fingerprint(
        key,
        stored["type"],
        stored["source"],
        stored["observed_on"],
        attributes_json(stored["attributes"]),
    )

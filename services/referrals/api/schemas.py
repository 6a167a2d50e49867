"""What the referrals API accepts and answers. Every limit here is a promise that bad input
gets a 422 naming the field, not a 500 and not a half-written referral."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from services.referrals.domain.sharing import Article9Condition
from services.referrals.service_layer.cases import ConsentGiven
from shared.auth import GSS_CODE
from shared.clock import london_today
from shared.identity import name_with_letters, normalise_postcode
from shared.input_policy import WRITTEN_AS_A_DATE, IsoDate
from shared.vocabulary import (
    Circumstance,
    ContactMethod,
    LawfulBasis,
    Need,
    Outcome,
    PartnerKind,
    RiskLevel,
)

# A name has a letter of some script to match on ("---" or "123" is not a name).
Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(name_with_letters)]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
LongText = Annotated[str, Field(min_length=1, max_length=2000)]
Postcode = Annotated[str, Field(max_length=16), AfterValidator(normalise_postcode)]
CouncilCode = Annotated[str, Field(pattern=GSS_CODE.pattern, examples=["E09000025"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _not_in_future(moment: datetime) -> datetime:
    if moment > datetime.now(UTC):
        raise ValueError("must not be in the future")
    return moment


class Contact(Strict):
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()\-]{6,19}$")
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    preferred: ContactMethod


class Address(Strict):
    line: str | None = Field(default=None, max_length=300)
    postcode: Postcode
    uprn: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")


class ResidentIn(Strict):
    given_name: Name
    family_name: Name
    date_of_birth: IsoDate | None = Field(default=None, description="optional, but helps matching")
    contact: Contact
    address: Address | None = Field(default=None, description="none for a resident with no home")
    preferred_language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    interpreter_needed: bool = False
    accessibility_needs: str | None = Field(default=None, max_length=500)

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_birth_date(cls, value: date | None) -> date | None:
        if value is not None and value > london_today():
            raise ValueError("must not be in the future")
        if value is not None and value.year < 1900:
            raise ValueError("must be 1900 or later")
        return value

    @model_validator(mode="after")
    def _preferred_route_is_given(self) -> ResidentIn:
        needed = {
            ContactMethod.PHONE: ("phone", self.contact.phone),
            ContactMethod.TEXT: ("phone", self.contact.phone),
            ContactMethod.EMAIL: ("email", self.contact.email),
            ContactMethod.LETTER: ("address", self.address),
        }.get(self.contact.preferred)
        if needed is not None and not needed[1]:
            raise ValueError(
                f"contact.preferred is {self.contact.preferred.value} but no {needed[0]} is given"
            )
        return self


class ConsentIn(Strict):
    given_by: str = Field(min_length=1, max_length=200, examples=["the resident"])
    method: Literal["verbal", "written", "electronic"]
    given_at: Annotated[AwareDatetime, WRITTEN_AS_A_DATE, AfterValidator(_not_in_future)]
    partner_kinds: list[PartnerKind] = Field(min_length=1)
    purpose: str = Field(default="referral to local support partners", max_length=500)
    expires_at: Annotated[AwareDatetime, WRITTEN_AS_A_DATE] | None = None

    @model_validator(mode="after")
    def _expires_after_given(self) -> ConsentIn:
        if self.expires_at is not None and self.expires_at <= self.given_at:
            raise ValueError("expires_at must be after given_at")
        return self

    def command(self) -> ConsentGiven:
        """The consent as the service layer records it."""
        return ConsentGiven(
            given_by=self.given_by,
            method=self.method,
            given_at=self.given_at,
            partner_kinds=tuple(self.partner_kinds),
            purpose=self.purpose,
            expires_at=self.expires_at,
        )


class JustifiedBasis(Strict):
    """A lawful basis other than consent needs a justification and who decided it; health
    needs (special category data) need an Article 9 condition. Missing ones are refused
    (422) naming the field."""

    justification: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="required for any basis other than consent: why it applies",
    )
    decided_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="required for any basis other than consent: who decided it applies",
        examples=["Team manager, Housing Needs"],
    )
    article9_condition: Article9Condition | None = Field(
        default=None,
        description="required with mental health or physical health and disability needs "
        "unless the basis is consent (then explicit consent)",
    )


class SharingIn(JustifiedBasis):
    lawful_basis: LawfulBasis
    consent: ConsentIn | None = None
    data_sharing_agreement: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _consent_goes_with_consent(self) -> SharingIn:
        if self.lawful_basis is LawfulBasis.CONSENT and self.consent is None:
            raise ValueError("lawful_basis is consent: record who gave it, how, when and to whom")
        if self.lawful_basis is not LawfulBasis.CONSENT and self.consent is not None:
            raise ValueError("consent is recorded only when the lawful basis is consent")
        return self


class ReferralCreate(Strict):
    resident: ResidentIn
    council: CouncilCode | None = Field(
        default=None, description="where the resident lives; a council referrer's own if omitted"
    )
    needs: list[Need] = Field(min_length=1, max_length=len(Need))
    circumstances: list[Circumstance] = Field(default=[], max_length=len(Circumstance))
    circumstances_text: LongText | None = None
    urgency: RiskLevel
    sharing: SharingIn

    @field_validator("needs", "circumstances")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))


class Sharing(BaseModel):
    allowed: bool
    reason: str


class ReferralAccepted(BaseModel):
    """A council's answer has every field; a voluntary partner's only the referral id and
    sharing, the same whether the resident was new or already had a case."""

    referral_id: str
    case_id: str | None = Field(default=None, description="councils only")
    case_status: str | None = Field(default=None, description="councils only")
    sharing: Sharing = Field(
        description="whether the case may go to a voluntary partner, and why; for a voluntary"
        " partner, what its own referral's lawful basis and consent allow"
    )
    attached_to_open_case: bool | None = Field(
        default=None, description="councils only: the resident already had an open case"
    )
    possible_duplicates: int | None = Field(default=None, description="councils only")


class TimelineEntry(BaseModel):
    at: datetime
    action: str
    status: str | None = None
    actor: str | None = None
    detail: str | None = None


class ReferralStatus(BaseModel):
    """What a referrer sees of its own referral: progress, nothing about the assessment."""

    referral_id: str
    case_status: str
    needs: list[Need]
    referred_at: datetime
    timeline: list[TimelineEntry]


class ConsentRecordIn(ConsentIn):
    needs: list[Need] | None = Field(default=None, description="replace the case's needs")


class AssignIn(Strict):
    caseworker: str = Field(min_length=1, max_length=200)


class NoteIn(Strict):
    text: LongText


class ReasonIn(Strict):
    reason: ShortText


class BasisIn(JustifiedBasis):
    lawful_basis: LawfulBasis = Field(
        description="the case's new basis; consent is recorded with POST .../consent"
    )
    data_sharing_agreement: str | None = Field(default=None, max_length=200)
    reason: ShortText = Field(description="why the basis changes (kept on the timeline)")


class CloseIn(Strict):
    outcome: Outcome
    note: str | None = Field(default=None, max_length=2000)


class CaseSummary(BaseModel):
    id: str
    council: str
    status: str
    priority: int
    urgency: str
    risk_level: str | None
    needs: list[str]
    origin: str
    assigned_to: str | None
    resident_name: str
    opened_at: datetime
    updated_at: datetime
    held_for_duplicate: bool = Field(
        False,
        description="a need is held back from partners until a caseworker settles a possible "
        "duplicate (these come first)",
    )
    need_statuses: dict[str, str] = Field(
        default={},
        description="each need of the case and its status (waiting_for_consent, routing, "
        "waiting_for_capacity, offered, accepted, in_progress, met, not_met, unroutable, …)",
    )
    overdue_offers: int = Field(
        default=0, description="offers accepted and not followed up by their deadline"
    )


class OverdueCount(BaseModel):
    council: str
    offers: int = Field(description="offers overdue for follow-up")
    cases: int = Field(description="cases with at least one")


class GapInQueue(BaseModel):
    """A gap in service in the council's area: counts and areas, no resident."""

    id: str
    council: str
    need: str
    reason: str = Field(description="unroutable, waiting_too_long or no_agreement")
    detail: str | None = None
    postcode_districts: list[str]
    languages: list[str]
    age_bands: list[str]
    residents_waiting: int = Field(description="as the partners service counted them")
    waiting_since: datetime
    longest_wait_hours: float
    detected_at: datetime
    cases: int = Field(description="the council's open cases with this need in the gap now")


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None
    gaps: list[GapInQueue] = Field(
        default=[],
        description="gaps in service in the council's area (first page only): shown while "
        "any open case has the need unroutable, or waiting for a place when it waited too "
        "long; filter the cases with need and need_status",
    )


class Acknowledged(BaseModel):
    case_id: str
    status: str


class FieldContribution(BaseModel):
    field: str = Field(description="given name, family name, date of birth, postcode, …")
    agreement: str = Field(description="exact, known variant, close, sounds alike, …")
    weight: float = Field(description="its match weight (bits); negative when it disagrees")


class PossibleDuplicate(BaseModel):
    id: str
    council: str
    resident_id: str
    resident_name: str
    candidate_id: str
    candidate_name: str
    reason: str
    status: str
    created_at: datetime
    score: float | None = Field(
        None,
        description="the match weight: 10 or more is listed here, 20 with an exact name "
        "and the same home attaches",
    )
    contributions: list[FieldContribution] = Field(
        default=[], description="what each field added to the score"
    )
    held_needs: list[str] = Field(
        default=[],
        description="needs of the newer resident's case held back from partners until this "
        "is confirmed or rejected (listed first)",
    )


class MergeIn(BaseModel):
    into: uuid.UUID


class UndoMergeIn(Strict):
    reason: ShortText = Field(description="why the two records are two people after all")


class Merge(BaseModel):
    """A merge of two resident records: ids only (no names)."""

    id: str
    council: str
    merged_resident_id: str = Field(description="the record merged away (restored by an undo)")
    into_resident_id: str
    merged_case_id: str | None = Field(None, description="its open case, withdrawn by the merge")
    survivor_case_id: str | None = None
    merged_by: str
    merged_at: datetime
    undone_at: datetime | None = None
    undone_by: str | None = None

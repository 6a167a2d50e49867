"""The risk service's HTTP bodies."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from services.risk.service_layer.assessments import Explained
from services.risk.service_layer.rulesets import CouncilRuleset, StoredRuleset
from services.risk.service_layer.signals import ImportOutcome
from shared.events.payloads import Reason
from shared.vocabulary import Need, RiskLevel


class RowProblem(BaseModel):
    line: int = Field(description="the row's number: its line in a file, its place in a batch")
    field: str
    reason: str


class ImportReport(BaseModel):
    import_id: str
    rows_read: int = Field(
        description="rows read: always rows_stored + rows_duplicate + rows_rejected"
    )
    rows_stored: int
    rows_duplicate: int = Field(description="already held: sending a file twice changes nothing")
    rows_rejected: int = Field(description="rows refused, each reported in errors")
    flagged: int
    cases_assessed: int
    errors: list[RowProblem]
    errors_truncated: bool
    lines_read: int = Field(
        description=(
            "lines of the file (places in a batch): always rows_read + lines_skipped + lines_joined"
        )
    )
    lines_skipped: int = Field(description="lines that are not rows: the CSV header, blank lines")
    lines_joined: int = Field(
        description=(
            "lines that continue the row above them: the second and later lines of a CSV "
            "record whose quoted cell holds line breaks (its row's line is its first)"
        )
    )

    @classmethod
    def of(cls, outcome: ImportOutcome) -> ImportReport:
        return cls(
            import_id=outcome.import_id,
            rows_read=outcome.rows_read,
            rows_stored=outcome.rows_stored,
            rows_duplicate=outcome.rows_duplicate,
            rows_rejected=outcome.rows_rejected,
            flagged=outcome.flagged,
            cases_assessed=outcome.cases_assessed,
            errors=[
                RowProblem(line=e.line, field=e.field, reason=e.reason) for e in outcome.errors
            ],
            errors_truncated=outcome.errors_truncated,
            lines_read=outcome.lines_read,
            lines_skipped=outcome.lines_skipped,
            lines_joined=outcome.lines_joined,
        )


class SignalOnRecord(BaseModel):
    type: str
    observed_on: date
    standing: str = Field(
        description="handled (help addressed it), same_as_handled (says no more than a "
        "handled one), worse (than a handled one), new: only worse and new ones counted"
    )
    counted: bool


class Why(BaseModel):
    level: RiskLevel
    score: int
    assessed_at: datetime
    ruleset_version: str
    reasons: list[Reason]
    suggested_needs: list[Need]
    explanation: str
    signals: list[SignalOnRecord] = Field(
        default=[],
        description="for a flag made after help arrived: the current signals and their "
        "standing (empty otherwise)",
    )
    returning: bool = Field(
        default=False, description="flagged again within the returning window after help"
    )
    helped_at: datetime | None = Field(default=None, description="when help last arrived")

    @classmethod
    def of(cls, explained: Explained) -> Why:
        return cls(
            level=explained.level,
            score=explained.score,
            assessed_at=explained.assessed_at,
            ruleset_version=explained.ruleset_version,
            reasons=explained.reasons,
            suggested_needs=explained.suggested_needs,
            explanation=explained.explanation,
            signals=[
                SignalOnRecord(
                    type=s.type, observed_on=s.observed_on, standing=s.standing, counted=s.counted
                )
                for s in explained.signals
            ],
            returning=explained.returning,
            helped_at=explained.helped_at,
        )


class RulesetInfo(BaseModel):
    version: str
    label: str
    active: bool
    created_by: str
    created_at: datetime
    activated_at: datetime | None

    @classmethod
    def of(cls, stored: StoredRuleset) -> RulesetInfo:
        return cls(
            version=stored.version,
            label=stored.label,
            active=stored.active,
            created_by=stored.created_by,
            created_at=stored.created_at,
            activated_at=stored.activated_at,
        )


class RulesetDetail(RulesetInfo):
    source: str

    @classmethod
    def of(cls, stored: StoredRuleset) -> RulesetDetail:
        return cls(**RulesetInfo.of(stored).model_dump(), source=stored.source)


class CouncilRulesetChoice(BaseModel):
    version: str = Field(min_length=1, max_length=100, description="a stored ruleset's version")


class CouncilRulesetInfo(BaseModel):
    """The ruleset in force for a council: its own, or the deployment's default."""

    council: str
    own: bool = Field(description="false: the council uses the deployment's default")
    chosen_by: str | None
    chosen_at: datetime | None
    ruleset: RulesetDetail

    @classmethod
    def of(cls, found: CouncilRuleset) -> CouncilRulesetInfo:
        return cls(
            council=found.council,
            own=found.own,
            chosen_by=found.chosen_by,
            chosen_at=found.chosen_at,
            ruleset=RulesetDetail.of(found.ruleset),
        )

"""Plain words about the rules: the explanation a caseworker can read to a resident, and a
record in the shape of the UK Algorithmic Transparency Recording Standard (ATRS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from services.risk.domain.rules import Ruleset
from services.risk.domain.signals import CATALOGUE
from shared.vocabulary import RiskLevel

_LEVEL_WORDS = {
    RiskLevel.NONE: "no particular concern",
    RiskLevel.LOW: "a low level of concern",
    RiskLevel.MEDIUM: "a medium level of concern",
    RiskLevel.HIGH: "a high level of concern",
    RiskLevel.CRISIS: "a possible crisis that needs a quick response",
}

HUMAN_OVERSIGHT = (
    "This is a prompt for a person to offer help, not a decision about you. A council "
    "caseworker decides what happens next, and nothing is shared with a support "
    "organisation without your consent or another lawful basis the council records."
)


def explain(level: RiskLevel, explanations: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The rules' explanations as one text, then the notes (what no rule found but a reader
    must know, such as that no signal could be matched)."""
    noted = "".join(f"{text} " for text in notes)
    if not explanations:
        return (
            f"None of the rules applied, so this shows {_LEVEL_WORDS[level]}. "
            f"{noted}{HUMAN_OVERSIGHT}"
        )
    reasons = " ".join(f"({n}) {text}" for n, text in enumerate(explanations, start=1))
    return f"This shows {_LEVEL_WORDS[level]} because: {reasons} {noted}{HUMAN_OVERSIGHT}"


def transparency_record(ruleset: Ruleset, *, today: date) -> str:
    """Markdown in the shape of the ATRS (tier 1 summary, tier 2 detail), from the ruleset."""
    rules = "\n".join(
        f"| `{r.spec.id}` | {r.spec.description} | {r.spec.level.value} | {r.spec.score} | "
        f"{', '.join(n.value.replace('_', ' ') for n in r.spec.suggest) or '-'} |"
        for r in ruleset.rules
    )
    data = "\n".join(
        f"- **{kind.value.replace('_', ' ')}**: {info.name}; considered for "
        f"{info.current_for_days} days after it was observed unless the source says otherwise"
        for kind, info in CATALOGUE.items()
    )
    return f"""# Algorithmic transparency record: Upstream risk rules

Ruleset version `{ruleset.version}`, generated {today.isoformat()} from the rules in force.

## Tier 1: summary

**Name**: Upstream risk rules ({ruleset.spec.label}).

**Description**: Simple, published rules that look at information a council already holds
(such as rent arrears, council tax enforcement, benefit sanctions and eviction notices) and
at what a referral says, to find residents who may be heading towards a crisis, so that the
council can offer help earlier.

**How it is used**: When a resident is referred, the rules give the case a level of concern
and suggest which kinds of help may be needed. When council data alone reaches the level
`{ruleset.spec.flag_level.value}` or above for a resident with no open case, the council's
team is asked to reach out. {HUMAN_OVERSIGHT}

**Contact**: the council that holds your case (see its privacy notice).

## Tier 2: detail

### Owner and responsibility
Each council using Upstream is the controller for its residents' data and is responsible for
the rules it switches on. Operators change rules only by publishing a new version, which is
checked, compared with the current one on the stored data (a dry run), and then activated.

### How the tool works
Each rule is a plain condition; there is no statistical model and no machine learning. A
resident's level is the highest level among the rules that apply; the score adds the rules'
scores (at most 100). Every assessment records the ruleset version that made it and the
reasons, in plain English, that a caseworker can read to the resident.

| rule | what it looks for | level | score | help it suggests |
|---|---|---|---|---|
{rules}

### Levels
none, low, medium, high, crisis. A resident without an open case is flagged for outreach at
`{ruleset.spec.flag_level.value}` or above, and not flagged again at the same or a lower
level for a cooling-off period. Once a partner records that help arrived, the signals that
help dealt with no longer count: only new or worse ones can flag the resident again, and a
flag soon after help says the resident is returning.

### Data
The rules read these signals, sent by council and partner data teams:

{data}

and, for a referral, the structured circumstances, needs, urgency and age it states. A
referral that gives no date of birth, postcode or UPRN cannot be matched to any signal: it is
assessed on what it says alone, and its reasons say so.
Names, dates of birth, addresses and contact details are not kept by the risk service: a
resident is recognised by keyed hashes of their details. A flagged resident's details are
passed, encrypted, only to the council team's case system.

### Human oversight
{HUMAN_OVERSIGHT} Caseworkers can see why a case was flagged, and the rules that applied.

### Risks and mitigations
- *Missing or wrong data*: signals expire, each one names its source, and the council team
  checks before acting.
- *Unfairness*: rules use only the listed signals, never protected characteristics; every
  change is dry-run against the current rules before it is switched on.
- *Loss of trust*: the rules, this record and each assessment's reasons are open.
"""

"""Rendering the reporting pages (Jinja2, autoescaped), their cookies and forms, and the
page's view of each report: its tables (columns, rows, CSV link) and charts.

The session is the access token itself, in an HttpOnly, SameSite=Strict cookie scoped to
``/reports`` (Secure outside development): every request verifies it again with the app's
TokenVerifier, so it ends when the token does. Forms carry a CSRF token: the sign-in form a
random value also set in a short-lived cookie (double submit), the sign-out form one
derived from the session's token."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from services.referrals.domain import reporting as d
from services.referrals.domain.reporting import OutcomesReport, ReachReport, RulesReport
from services.referrals.service_layer.reporting import ReportQuery
from services.referrals.web import charts
from shared.settings import Environment as Deployment
from shared.settings import ServiceSettings
from shared.vocabulary import Need
from shared.web import (
    delete_cookie,
    render,
    set_cookie,
)
from shared.web import form_token as shared_form_token

HERE = Path(__file__).parent
PREFIX = "/reports"
SESSION_COOKIE = "upstream_reports"
FORM_COOKIE = "upstream_reports_form"
AREA = re.compile(r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?$")
POSITIVE_OUTCOMES = ("support_provided", "partly_resolved")

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def words(value: Any) -> str:
    return str(getattr(value, "value", value) or "").replace("_", " ")


def figure(value: Any, kind: str = "") -> str:
    """A figure as a cell shows it: shares as percentages, none as "none"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        # A dry run's time: the council's clock, to the minute.
        return value.astimezone(d.LONDON).strftime("%Y-%m-%d %H:%M")
    if kind == "share" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if kind == "words":
        return words(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


templates.filters["words"] = words
templates.filters["figure"] = figure


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(templates, name, status_code, **context)


def safe_next(path: str | None) -> str | None:
    """A page of these reports to go back to after sign-in; nothing else (no open redirect)."""
    if not path or not path.startswith(PREFIX + "/") or path.startswith("//"):
        return None
    if any(c in path for c in ("\\", "\r", "\n")) or path.startswith(PREFIX + "/sign-"):
        return None
    return path


# -- cookies and CSRF ----------------------------------------------------------------------


def _secure(settings: ServiceSettings) -> bool:
    return settings.environment is not Deployment.DEVELOPMENT


def with_session(response: Response, token: str, settings: ServiceSettings) -> Response:
    set_cookie(response, SESSION_COOKIE, token, path=PREFIX, secure=_secure(settings))
    response.delete_cookie(FORM_COOKIE, path=PREFIX)
    return response


def without_session(response: Response, settings: ServiceSettings) -> Response:
    return delete_cookie(response, SESSION_COOKIE, path=PREFIX, secure=_secure(settings))


def form_token(request: Request) -> str:
    """The sign-in form's CSRF token: the form cookie's, or a new one."""
    return shared_form_token(request, FORM_COOKIE)


def with_form_cookie(response: Response, token: str, settings: ServiceSettings) -> Response:
    return set_cookie(
        response, FORM_COOKIE, token, path=PREFIX, secure=_secure(settings), max_age=3600
    )


def session_csrf(session_token: str) -> str:
    """The sign-out form's CSRF token: known only to who holds the session's token."""
    return hmac.new(session_token.encode(), b"reports|sign-out", hashlib.sha256).hexdigest()


# -- the filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterForm:
    """The filters as given (to show them back) and the errors found, by field."""

    values: dict[str, str]
    errors: dict[str, str]
    query: ReportQuery

    def params(self) -> str:
        """The filters as a query string (for the CSV links and the nav): those given and
        not in error."""
        given = {k: v for k, v in self.values.items() if v and k not in self.errors}
        return ("?" + urlencode(given)) if given else ""

    def shown(self, period_from: date | None, period_to: date | None) -> dict[str, str]:
        """What the form's fields show: what was given, else the report's own period."""
        shown = dict(self.values)
        if not shown["from"] and period_from is not None:
            shown["from"] = period_from.isoformat()
        if not shown["to"] and period_to is not None:
            shown["to"] = period_to.isoformat()
        return shown


FILTER_LABELS = {"from": "From", "to": "To", "area": "Area", "need": "Need"}


def filter_form(request: Request) -> FilterForm:
    """The period, area and need from the page's query string: an empty field is no filter;
    a bad value is an error naming the field (shown on the page, not raised)."""
    values = {name: request.query_params.get(name, "").strip() for name in FILTER_LABELS}
    errors: dict[str, str] = {}
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        try:
            days[name] = date.fromisoformat(values[name]) if values[name] else None
        except ValueError:
            errors[name] = f"{FILTER_LABELS[name]} must be a date, such as 2026-04-01"
            days[name] = None
    if values["area"] and not AREA.match(values["area"]):
        errors["area"] = "Area must be a postcode district, such as E15"
    need = values["need"] or None
    if need is not None and need not in {n.value for n in Need}:
        errors["need"] = "Need must be one of the needs listed"
        need = None
    query = ReportQuery(
        period_from=days["from"],
        period_to=days["to"],
        area=values["area"].upper() if values["area"] and "area" not in errors else None,
        need=need,
    )
    return FilterForm(values, errors, query)


# -- what a report looks like on its page ----------------------------------------------------


@dataclass(frozen=True)
class Column:
    field: str
    label: str
    kind: str = ""  # share: a proportion, as a percentage; words: a code; number: aligned


@dataclass(frozen=True)
class TableView:
    """One table of a report on a page: its HTML table, its chart and its CSV link."""

    key: str  # the report's field, and the CSV's table
    report: str  # outcomes, rules or reach
    title: str
    description: str
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    csv_url: str
    chart: Markup | None = None


# Codes shown as words ("no_capacity": "no capacity"); ids, districts and versions as they are.
WORD_FIELDS = frozenset({"source", "need", "response", "reason", "outcome", "measure", "level"})
NUMBER_TYPES = frozenset({"int", "float", "float | None", "int | None"})


def _columns(row_type: type, labels: dict[str, str], shares: Sequence[str] = ()) -> list[Column]:
    """A row type's columns: each field, labelled, with how its cells show."""
    columns = []
    for f in dataclasses.fields(row_type):
        if f.name in shares:
            kind = "share"
        elif f.name in WORD_FIELDS:
            kind = "words"
        else:
            kind = "number" if str(f.type) in NUMBER_TYPES else ""
        columns.append(Column(f.name, labels.get(f.name, words(f.name).capitalize()), kind))
    return columns


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rows]


def _csv_url(council: str, report: str, table: str, filters: FilterForm) -> str:
    return f"{PREFIX}/{council}/{report}/{table}.csv{filters.params()}"


def _bars(
    rows: Sequence[Any], label: Callable[[Any], str], value: Callable[[Any], float | None]
) -> list[charts.Bar]:
    bars = []
    for row in rows:
        figure_ = value(row)
        bars.append(charts.Bar(label(row), figure_ or 0, None if figure_ is not None else "none"))
    return bars


def _chart(svg: str) -> Markup:
    return Markup(svg)  # charts.py escapes every label itself


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    key: str  # for the tests and the stylesheet: data-figure


def outcome_headlines(report: OutcomesReport) -> list[Headline]:
    durations = {d.measure: d for d in report.durations}
    first_offer = durations.get("time_to_first_offer")
    repeats = report.repeat_referrals[0] if report.repeat_referrals else None
    accepted = sum(r.offers for r in report.offer_responses if r.response == "accepted")
    offers = sum(r.offers for r in report.offer_responses)
    helped = sum(
        r.offers for r in report.outcomes_by_need_and_partner if r.outcome in POSITIVE_OUTCOMES
    )
    return [
        Headline("Referrals received", figure(repeats.referrals if repeats else 0), "referrals"),
        Headline("Residents referred", figure(repeats.residents if repeats else 0), "residents"),
        Headline("Offers made", figure(offers), "offers"),
        Headline("Offers accepted", figure(accepted), "accepted"),
        Headline("Offers with a positive outcome", figure(helped), "helped"),
        Headline(
            "Median hours to a first offer",
            figure(first_offer.median_hours if first_offer else None),
            "median_hours_to_first_offer",
        ),
        Headline("Needs met", figure(sum(a.met for a in report.needs_by_area)), "needs_met"),
        Headline(
            "Referrals repeated within 90 days",
            figure(repeats.share if repeats else None, "share"),
            "repeat_share",
        ),
    ]


def outcome_tables(report: OutcomesReport, filters: FilterForm) -> list[TableView]:
    council = report.council

    def view(
        key: str,
        title: str,
        description: str,
        row_type: type,
        rows: Sequence[Any],
        svg: str,
        labels: dict[str, str] | None = None,
        shares: Sequence[str] = (),
    ) -> TableView:
        return TableView(
            key,
            "outcomes",
            title,
            description,
            _columns(row_type, labels or {}, shares),
            _rows(rows),
            _csv_url(council, "outcomes", key, filters),
            _chart(svg),
        )

    weeks = sorted({w.week_starting for w in report.partner_load})
    partners = sorted({w.partner_id for w in report.partner_load})
    load = {(w.week_starting, w.partner_id): w for w in report.partner_load}
    load_series = [
        charts.Series(
            partner,
            [
                (w.open_at_week_end + w.in_hand_at_week_end)
                if (w := load.get((week, partner)))
                else 0
                for week in weeks
            ],
        )
        for partner in partners
    ]
    # Beside each partner's load, its capacity, for the partners whose capacity is known.
    load_series += [
        charts.Series(
            f"{partner} capacity",
            [(w.capacity or 0) if (w := load.get((week, partner))) else 0 for week in weeks],
        )
        for partner in partners
        if any(w.capacity is not None for w in report.partner_load if w.partner_id == partner)
    ]
    repeats = report.repeat_referrals[0] if report.repeat_referrals else None
    return [
        view(
            "referrals_by_source_and_need",
            "Referrals by source and need",
            "Referrals received in the period, one per need they name (a referral of two "
            "needs counts in two rows), by the referrer's kind; outreach cases opened from "
            "a flag as source flag, for the needs the flag suggested.",
            d.SourceNeedCount,
            report.referrals_by_source_and_need,
            charts.bar_chart(
                "chart-referrals",
                "Referral needs by source and need",
                "Bars: referral needs for each source and need, as in the table below.",
                _bars(
                    report.referrals_by_source_and_need,
                    lambda r: f"{words(r.source)}: {words(r.need)}",
                    lambda r: r.referral_needs,
                ),
            ),
        ),
        view(
            "referrals_by_source",
            "Referrals by source",
            "Referrals received in the period, each once however many needs it names, by "
            "the referrer's kind; outreach cases opened from a flag as source flag.",
            d.SourceCount,
            report.referrals_by_source,
            charts.bar_chart(
                "chart-referral-sources",
                "Referrals by source",
                "Bars: referrals from each source, as in the table below.",
                _bars(report.referrals_by_source, lambda r: words(r.source), lambda r: r.referrals),
            ),
        ),
        view(
            "durations",
            "Time to first offer, acceptance and outcome",
            "Hours from the case opening to its first offer (all cases, then referred and "
            "outreach cases apart), first acceptance and first outcome: the cases opened, "
            "those that reached it, those still open that have not yet (the median cannot "
            "see them) and those closed without it, the median and the 90th percentile.",
            d.DurationMeasure,
            report.durations,
            charts.bar_chart(
                "chart-durations",
                "Median hours to each milestone",
                "Bars: the median hours from a case opening to each milestone.",
                _bars(report.durations, lambda r: words(r.measure), lambda r: r.median_hours),
            ),
            {"median_hours": "Median (hours)", "p90_hours": "90th percentile (hours)"},
        ),
        view(
            "offer_responses",
            "Offers accepted, declined and expired",
            "Each offer once, by where it ended: accepted, declined (by reason), expired, "
            "withdrawn before a response, or still open.",
            d.OfferResponseCount,
            report.offer_responses,
            charts.bar_chart(
                "chart-responses",
                "Offers by response",
                "Bars: offers by how they ended, declines by reason.",
                _bars(
                    report.offer_responses,
                    lambda r: words(r.response) + (f" ({words(r.reason)})" if r.reason else ""),
                    lambda r: r.offers,
                ),
            ),
        ),
        view(
            "outcomes_by_need_and_partner",
            "Outcomes by need and partner",
            "Offers with an outcome recorded, by need, partner and outcome.",
            d.OutcomeCount,
            report.outcomes_by_need_and_partner,
            charts.bar_chart(
                "chart-outcomes",
                "Outcomes by need and partner",
                "Bars: offers with each outcome, for each need and partner.",
                _bars(
                    report.outcomes_by_need_and_partner,
                    lambda r: f"{words(r.need)}, {r.partner_id}: {words(r.outcome)}",
                    lambda r: r.offers,
                ),
            ),
            {"partner_id": "Partner"},
        ),
        view(
            "needs_by_area",
            "Needs met, not met, unroutable and waiting, by area",
            "Each need of each case, by postcode district and where it stands; closed and "
            "withdrawn: the case was closed or withdrawn before the need had an outcome.",
            d.AreaNeeds,
            report.needs_by_area,
            charts.bar_chart(
                "chart-needs",
                "Needs met by area",
                "Bars: needs met in each postcode district; the table gives every state.",
                _bars(report.needs_by_area, lambda r: r.area, lambda r: r.met),
            ),
        ),
        view(
            "repeat_referrals",
            "Repeat referrals within 90 days",
            "Referrals in the period whose resident had another referral in the 90 days before.",
            d.RepeatReferrals,
            report.repeat_referrals,
            charts.bar_chart(
                "chart-repeats",
                "Referrals and repeat referrals",
                "Bars: referrals received, and those repeated within 90 days.",
                [
                    charts.Bar("referrals", repeats.referrals if repeats else 0),
                    charts.Bar(
                        "repeated within 90 days", repeats.repeat_within_90_days if repeats else 0
                    ),
                ],
            ),
            {"repeat_within_90_days": "Repeated within 90 days"},
            shares=("share",),
        ),
        view(
            "partner_load",
            "Partner load by week",
            "Per partner and week (Monday to Sunday): offers made and accepted, those "
            "open or in hand at the week's end, and the partner's capacity then (the "
            "open offers and active referrals its services take at once, a paused "
            "service's none; none when not known).",
            d.PartnerWeek,
            report.partner_load,
            charts.line_chart(
                "chart-load",
                "Partner load by week",
                "Lines: offers open or in hand at each week's end, one line per partner, and "
                "each partner's capacity at the week's end (0 where not known).",
                [w.isoformat() for w in weeks],
                load_series,
            ),
            {
                "partner_id": "Partner",
                "open_at_week_end": "Open at week end",
                "capacity": "Capacity at week end",
            },
        ),
    ]


def rules_tables(report: RulesReport, filters: FilterForm) -> list[TableView]:
    def conversion(row: d.RuleMeasure) -> float | None:
        if row.residents_flagged == 0:
            return None
        return round(row.positive_outcome / row.residents_flagged * 100, 1)

    return [
        TableView(
            "rules",
            "rules",
            "Rule evaluation",
            "Per ruleset version and rule of the flags raised in the period (a flag counts "
            "for every rule that fired on it): what the flags led to.",
            _columns(
                d.RuleMeasure,
                {
                    "rule_id": "Rule",
                    "flag_to_help_median_hours": "Flag to help, median (hours)",
                    "flag_to_help_p90_hours": "Flag to help, 90th percentile (hours)",
                    "residents_reflagged_after_help": "Re-flagged after help",
                    "share_reflagged_after_help": "Share re-flagged after help",
                },
                shares=("share_reflagged_after_help",),
            ),
            _rows(report.rules),
            _csv_url(report.council, "rules", "rules", filters),
            _chart(
                charts.bar_chart(
                    "chart-conversion",
                    "Flag to help conversion by rule",
                    "Bars: of the residents each rule flagged, the percentage whose outreach "
                    "case had a positive outcome.",
                    [
                        charts.Bar(
                            f"{r.rule_id} ({r.ruleset_version})",
                            conversion(r) or 0,
                            "none" if conversion(r) is None else f"{conversion(r):g}%",
                        )
                        for r in report.rules
                    ],
                )
            ),
        ),
        TableView(
            "assessment_levels",
            "rules",
            "Referral assessments by level",
            "Per ruleset version and level of each referred case's first assessment.",
            _columns(
                d.AssessmentMeasure,
                {
                    "assessed_to_help_median_hours": "Assessment to help, median (hours)",
                    "assessed_to_help_p90_hours": "Assessment to help, 90th percentile (hours)",
                },
            ),
            _rows(report.assessment_levels),
            _csv_url(report.council, "rules", "assessment_levels", filters),
            _chart(
                charts.bar_chart(
                    "chart-levels",
                    "Positive outcomes by assessment level",
                    "Bars: referred cases with a positive outcome, by their first "
                    "assessment's level.",
                    [
                        charts.Bar(f"{a.level} ({a.ruleset_version})", a.positive_outcome)
                        for a in report.assessment_levels
                    ],
                )
            ),
        ),
        *dry_run_tables(report, filters),
    ]


def dry_run_tables(report: RulesReport, filters: FilterForm) -> list[TableView]:
    """The recent dry runs of candidate rulesets (risk's figures over the council's stored
    profiles) beside what each rule's flags under the ruleset in force led to."""
    latest = report.dry_runs[0] if report.dry_runs else None
    compared = [r for r in report.dry_runs if latest and r.ran_at == latest.ran_at]
    reach_bars = []
    for row in compared:
        reach_bars.append(charts.Bar(f"{row.rule_id}: in force", row.would_fire_in_force))
        reach_bars.append(
            charts.Bar(f"{row.rule_id}: {row.candidate_version}", row.would_fire_candidate)
        )
    return [
        TableView(
            "dry_runs",
            "rules",
            "Dry runs of candidate rulesets",
            "The latest dry run of each recent candidate ruleset (run by the period's end), "
            "rule by rule: the residents each rule would fire for under the ruleset in force "
            "and under the candidate, over every stored profile of the council when it ran "
            "(whatever the area and need filters), beside the rule's actual flags in the "
            "period under that ruleset in force and the share that led to help.",
            _columns(
                d.DryRunMeasure,
                {
                    "candidate_version": "Candidate",
                    "in_force_version": "Ruleset in force",
                    "ran_at": "Dry run at",
                    "rule_id": "Rule",
                    "residents_flagged": "Flagged in the period",
                    "positive_outcome": "Positive outcome",
                    "flag_to_help_share": "Flag to help",
                    "would_fire_in_force": "Would fire, in force",
                    "would_fire_candidate": "Would fire, candidate",
                    "change": "Change",
                },
                shares=("flag_to_help_share",),
            ),
            _rows(report.dry_runs),
            _csv_url(report.council, "rules", "dry_runs", filters),
            _chart(
                charts.bar_chart(
                    "chart-dry-run",
                    "Expected reach by rule, latest dry run",
                    "Bars: for each rule, the residents it would fire for under the ruleset "
                    "in force and under the candidate of the latest dry run; the table gives "
                    "every recent candidate.",
                    reach_bars,
                )
            ),
        ),
        TableView(
            "dry_run_levels",
            "rules",
            "Dry runs: residents by level",
            "The same dry runs: the council's residents at each level under the ruleset in "
            "force and under the candidate.",
            _columns(
                d.DryRunLevel,
                {
                    "candidate_version": "Candidate",
                    "in_force_version": "Ruleset in force",
                    "ran_at": "Dry run at",
                    "residents_in_force": "Residents, in force",
                    "residents_candidate": "Residents, candidate",
                },
            ),
            _rows(report.dry_run_levels),
            _csv_url(report.council, "rules", "dry_run_levels", filters),
        ),
    ]


REACH_DIMENSIONS = (
    ("age_band", "Reach by age band"),
    ("language", "Reach by preferred language"),
    ("area", "Reach by area"),
)


def reach_tables(report: ReachReport, filters: FilterForm) -> list[TableView]:
    """One table per dimension; each is part of the report's one ``reach`` table, which
    each section's CSV link downloads whole."""
    labels = {
        "flagged": "Flagged (outreach cases)",
        "flagged_no_consent": "Flagged, never consented",
        "flagged_no_offer": "Consented, never offered",
    }
    views = []
    for dimension, title in REACH_DIMENSIONS:
        named = {**labels, "value": words(dimension).capitalize()}
        columns = [c for c in _columns(d.ReachRow, named) if c.field != "dimension"]
        rows = [r for r in report.reach if r.dimension == dimension]
        views.append(
            TableView(
                "reach",
                "reach",
                title,
                "Cases opened in the period, and the gap: residents flagged but never reached.",
                columns,
                _rows(rows),
                _csv_url(report.council, "reach", "reach", filters),
                _chart(
                    charts.bar_chart(
                        f"chart-reach-{dimension}",
                        f"Flagged but never reached, by {words(dimension)}",
                        "Bars: flagged residents never reached (never consented, or "
                        "consented and never offered), as in the table.",
                        [
                            charts.Bar(r.value, r.flagged_no_consent + r.flagged_no_offer)
                            for r in rows
                        ],
                    )
                ),
            )
        )
    return views


def never_reached(report: ReachReport) -> tuple[int, int]:
    """Flagged residents never reached: (never consented, consented but never offered);
    counted on one dimension, where each case is once."""
    rows = [r for r in report.reach if r.dimension == "area"]
    return sum(r.flagged_no_consent for r in rows), sum(r.flagged_no_offer for r in rows)

"""The human-readable content of each summary section, as plain strings in tables and paragraphs.

Every format renders these same texts with its own escaping (lxml for XHTML and CDA narrative, Jinja
autoescape for HTML, reportlab's escape for PDF), so free text is never concatenated into markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from integration.summaries.model import Administration, Outcome, Session, Summary, VitalReading


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class SectionText:
    """`key` names the section in every format; `alert` paragraphs are shown prominently."""

    key: str
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    alerts: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.paragraphs or self.tables or self.alerts)


def when(moment: datetime | None) -> str:
    """A timestamp as recorded (clinic local time with its offset)."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "not recorded"


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "not recorded"
    text = f"{value:g}"
    return f"{text} {unit}".strip()


def period_text(summary: Summary) -> str:
    p = summary.period
    if p.start is None and p.end is None:
        return "the whole course"
    if p.end is None:
        return f"since {p.start.isoformat()}" if p.start else "the whole course"
    if p.start is None:
        return f"up to {p.end.isoformat()}"
    return f"{p.start.isoformat()} to {p.end.isoformat()}"


def _reading(r: VitalReading | None) -> str:
    return number(r.value, r.unit) if r else "not recorded"


def _adjuncts(items: tuple[Administration, ...]) -> str:
    if not items:
        return "none"
    return "; ".join(
        f"{a.medication} {number(a.dose_mg, 'mg') if a.dose_mg is not None else ''}".strip()
        + (f" ({a.reason})" if a.reason else "")
        for a in items
    )


def _status(s: Session) -> str:
    return f"{s.status}: {s.status_reason}" if s.status_reason else s.status


def referral(summary: Summary) -> SectionText:
    r = summary.referral
    if r is None:
        return SectionText("referral", "Reason for referral")
    paragraphs = [
        f"Referred by {r.referrer.name if r.referrer else 'an unrecorded referrer'} on {when(r.authored)}"
        f" for: {r.reason}."
    ]
    if r.note:
        paragraphs.append(f"Referral note: {r.note}")
    return SectionText("referral", "Reason for referral", tuple(paragraphs))


def course(summary: Summary) -> SectionText:
    """History of present illness: the course of infusions in the period."""
    n = len(summary.sessions)
    paragraphs = (
        f"{n} session(s) in {period_text(summary)}; {summary.ketamine_infusions} ketamine infusion(s),"
        f" cumulative ketamine {number(summary.ketamine_total_mg, 'mg')}.",
    )
    rows = tuple(
        (
            when(s.start),
            s.indication,
            number(s.ketamine.per_kg, "mg/kg") if s.ketamine else "no ketamine",
            number(s.ketamine.dose_mg, "mg") if s.ketamine else "-",
            f"{s.ketamine.duration_min} min" if s.ketamine and s.ketamine.duration_min is not None else "-",
            _status(s),
            _adjuncts(s.adjuncts),
            " ".join(s.notes) or "-",
        )
        for s in summary.sessions
    )
    table = Table(
        ("Date", "Indication", "Ketamine mg/kg", "Ketamine total", "Infusion", "Status", "Adjuncts", "Note"),
        rows,
    )
    return SectionText("course", "Course of treatment", paragraphs, (table,) if rows else ())


def medications(summary: Summary) -> SectionText:
    rows = tuple(
        (when(a.start), a.medication, number(a.dose_mg, "mg"), number(a.per_kg, "mg/kg"), a.status)
        for s in summary.sessions
        for a in ((s.ketamine,) if s.ketamine else ()) + s.adjuncts
    )
    if not rows:
        return SectionText("medications", "Medications administered")
    return SectionText(
        "medications",
        "Medications administered",
        tables=(Table(("Given", "Medication", "Dose", "Dose per kg", "Status"), rows),),
    )


def vitals(summary: Summary) -> SectionText:
    rows = tuple(
        (when(s.start), _reading(s.peak_systolic), _reading(s.peak_heart_rate), _reading(s.lowest_spo2))
        for s in summary.sessions
    )
    if not rows:
        return SectionText("vitals", "Vital signs")
    return SectionText(
        "vitals",
        "Vital signs",
        ("Per session: the highest systolic blood pressure and heart rate and the lowest SpO2 recorded.",),
        (Table(("Session", "Peak systolic BP", "Peak heart rate", "Lowest SpO2"), rows),),
    )


def _change(o: Outcome) -> str:
    if o.change_points is None:
        return "not computed"
    pct = f" ({o.change_percent:+g}%)" if o.change_percent is not None else ""
    return f"{o.change_points:+g} points{pct}"


def outcome_rows(o: Outcome) -> tuple[str, ...]:
    def score(s: object) -> str:
        if s is None:
            return "none"
        band = f", {s.band}" if s.band else ""  # type: ignore[attr-defined]
        return f"{s.value:g} on {when(s.at)[:10]}{band}"  # type: ignore[attr-defined]

    return (o.title, score(o.baseline), score(o.latest), _change(o), o.response.label, o.remission.label)


def outcomes(summary: Summary) -> SectionText:
    if not summary.outcomes:
        return SectionText("outcomes", "Outcome measures")
    definitions = []
    for o in summary.outcomes:
        definitions.append(f"{o.title}: {o.response.definition} {o.remission.definition}")
    return SectionText(
        "outcomes",
        "Outcome measures",
        (
            "Baseline: the assessment marked baseline, else the earliest before the first infusion."
            " Latest: the last in the period. At an infusion visit only the last score before the infusion"
            " counts. Change: latest minus baseline.",
            *definitions,
        ),
        (
            Table(
                ("Instrument", "Baseline", "Latest", "Change", "Response", "Remission"),
                tuple(outcome_rows(o) for o in summary.outcomes),
            ),
        ),
    )


def safety(summary: Summary) -> SectionText:
    alerts = tuple(f"SAFETY SIGNAL {when(s.at)}: {s.text}" for s in summary.safety_signals)
    rows = tuple(
        (when(e.onset), e.event, e.severity or "not recorded", e.outcome or "not recorded")
        for s in summary.sessions
        for e in s.adverse_events
    )
    paragraphs = () if rows else ("No adverse events recorded in the period.",)
    tables = [Table(("Onset", "Event", "Severity", "Outcome"), rows)] if rows else []
    dissociation = tuple(
        (when(s.start), number(s.dissociation.value)) for s in summary.sessions if s.dissociation is not None
    )
    if dissociation:
        tables.append(Table(("Session", "Dissociation after the infusion (CADSS total)"), dissociation))
    return SectionText("safety", "Safety", paragraphs, tuple(tables), alerts)


def problems(summary: Summary) -> SectionText:
    rows = tuple((p.text, ", ".join(code for _, code in p.codes) or "-") for p in summary.problems)
    if not rows:
        return SectionText("problems", "Problems")
    return SectionText("problems", "Problems", tables=(Table(("Problem", "Code"), rows),))


def allergies(summary: Summary) -> SectionText:
    if not summary.allergies:
        return SectionText("allergies", "Allergies and intolerances")
    return SectionText("allergies", "Allergies and intolerances", tuple(a.text for a in summary.allergies))


def plan(summary: Summary) -> SectionText:
    p = summary.plan
    lines = []
    if p.planned is None:
        lines.append("No treatment series is planned.")
    else:
        lines.append(
            f"{p.series_label or 'Current series'}: {p.done} of {p.planned} sessions given,"
            f" {p.remaining} remaining."
        )
    contact = summary.clinic.name + (f", phone {summary.clinic.phone}" if summary.clinic.phone else "")
    attending = summary.attending.name if summary.attending else "not recorded"
    lines.append(f"Attending physician: {attending}. Clinic contact: {contact}.")
    return SectionText("plan", "Plan", tuple(lines))


def assessment_and_plan(summary: Summary) -> SectionText:
    """Safety (signals first) and plan together: the documents' Assessment and Plan section."""
    safe, then = safety(summary), plan(summary)
    return SectionText(
        "plan", "Assessment and plan", safe.paragraphs + then.paragraphs, safe.tables, safe.alerts
    )


def all_sections(summary: Summary) -> tuple[SectionText, ...]:
    return (
        safety(summary),
        referral(summary),
        course(summary),
        outcomes(summary),
        medications(summary),
        vitals(summary),
        problems(summary),
        allergies(summary),
        plan(summary),
    )

"""The computed treatment summary: one frozen value that every output format (FHIR, C-CDA, HTML, PDF) renders.

Every figure carries what it was computed from (resource references), so the FHIR document can include and
reference exactly the resources behind it, and every judgement carries its definition text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Period:
    """The reporting window: sessions and measurements from `start` to `end`, both inclusive, by day."""

    start: date | None = None
    end: date | None = None

    def contains(self, moment: datetime | date) -> bool:
        day = moment.date() if isinstance(moment, datetime) else moment
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Person:
    reference: str
    name: str


@dataclass(frozen=True, slots=True)
class PatientInfo:
    reference: str
    name: str
    birth_date: date | None
    gender: str | None
    identifiers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Referral:
    reference: str
    reason: str
    reason_codes: tuple[tuple[str, str], ...]
    authored: datetime | None
    referrer: Person | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Administration:
    """One medication given in a session; `per_kg` only for weight-based doses."""

    reference: str
    medication: str
    rxnorm: str | None
    dose_mg: float | None
    dose_unit: str | None
    per_kg: float | None
    start: datetime | None
    end: datetime | None
    status: str
    reason: str | None

    @property
    def duration_min(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return round((self.end - self.start).total_seconds() / 60)


@dataclass(frozen=True, slots=True)
class VitalReading:
    reference: str
    value: float
    unit: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AdverseEventItem:
    reference: str
    event: str
    severity: str | None
    outcome: str | None
    onset: datetime | None
    session_reference: str | None


@dataclass(frozen=True, slots=True)
class Score:
    reference: str
    value: float
    at: datetime
    band: str | None


@dataclass(frozen=True, slots=True)
class Session:
    """One infusion visit: the Encounter and its Procedure, medications and safety extremes."""

    encounter: str
    procedure: str | None
    start: datetime
    end: datetime | None
    indication: str
    indication_codes: tuple[tuple[str, str], ...]
    status: str
    status_reason: str | None
    series_label: str | None
    ketamine: Administration | None
    adjuncts: tuple[Administration, ...]
    peak_systolic: VitalReading | None
    peak_heart_rate: VitalReading | None
    lowest_spo2: VitalReading | None
    adverse_events: tuple[AdverseEventItem, ...]
    notes: tuple[str, ...]
    dissociation: Score | None = None  # tolerability instrument (CADSS) total after the infusion


@dataclass(frozen=True, slots=True)
class Band:
    low: float
    high: float
    label: str


@dataclass(frozen=True, slots=True)
class Judgement:
    """A yes/no/not-assessed finding with the rule that decided it, quoted in every format."""

    met: bool | None
    definition: str

    @property
    def label(self) -> str:
        return "not assessed" if self.met is None else "yes" if self.met else "no"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One instrument over the course: baseline vs the latest score in the period."""

    key: str
    title: str
    loinc: str | None
    code_system: str
    code: str
    scale_max: float
    bands: tuple[Band, ...]
    scores: tuple[Score, ...]
    baseline: Score | None
    latest: Score | None
    change_points: float | None
    change_percent: float | None
    response: Judgement
    remission: Judgement


@dataclass(frozen=True, slots=True)
class SafetySignal:
    reference: str
    text: str
    at: datetime | None
    session_reference: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    series_label: str | None
    planned: int | None
    done: int
    remaining: int | None
    care_plan: str | None


@dataclass(frozen=True, slots=True)
class Clinic:
    name: str
    phone: str | None
    organization_reference: str


@dataclass(frozen=True, slots=True)
class Problem:
    reference: str
    text: str
    codes: tuple[tuple[str, str], ...]
    onset: datetime | None


@dataclass(frozen=True, slots=True)
class Allergy:
    reference: str
    text: str
    codes: tuple[tuple[str, str], ...]
    no_known: bool


@dataclass(frozen=True, slots=True)
class Summary:
    patient: PatientInfo
    period: Period
    generated_at: datetime
    clinic: Clinic
    attending: Person | None
    referral: Referral | None
    sessions: tuple[Session, ...]
    ketamine_total_mg: float
    ketamine_infusions: int
    outcomes: tuple[Outcome, ...]
    safety_signals: tuple[SafetySignal, ...]
    problems: tuple[Problem, ...]
    allergies: tuple[Allergy, ...]
    plan: Plan

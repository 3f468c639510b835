"""Typed clinic records (shared/spec/clinic-records.md), parsed at the edge so mappers never see raw dicts.

Input dicts are already valid per the contract (ingest validates them); parsing here only converts types:
datetimes to aware `datetime`, dates to `date`, lists to tuples, and every free-text value to a valid FHIR
string (see `text.clean_text`; an optional string that is empty after cleaning becomes None).
Ids are kept exactly as sent: they are the idempotency keys the FHIR ids are derived from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mappings.errors import MappingError
from mappings.text import clean_text

Raw = Mapping[str, Any]


def _dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:  # the contract rejects these; never guess a zone
        raise MappingError(f"datetime without an offset: {value!r}")
    return parsed


def _opt_dt(value: str | None) -> datetime | None:
    return None if value is None else _dt(value)


def _opt_date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _text(value: str | None) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _req_text(value: str) -> str:
    text = clean_text(value)
    if text is None:
        raise MappingError("a required text field is empty")
    return text


def _texts(values: Any) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    return tuple(t for t in (clean_text(v) for v in values or ()) if t is not None)


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; country is ISO 3166 alpha-2."""

    line: tuple[str, ...]
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None

    @classmethod
    def from_dict(cls, d: Raw) -> Address:
        """Parse the contract's address object."""
        return cls(
            _texts(d.get("line")),
            _text(d.get("city")),
            _text(d.get("state")),
            _text(d.get("postal_code")),
            _text(d.get("country")),
        )


@dataclass(frozen=True, slots=True)
class OtherIdentifier:
    """Another system's id for the same person, e.g. a hospital MRN (system is a URI)."""

    system: str
    value: str

    @classmethod
    def from_dict(cls, d: Raw) -> OtherIdentifier:
        """Parse one `identifiers` entry."""
        return cls(d["system"].strip(), _req_text(d["value"]))


@dataclass(frozen=True, slots=True)
class Consent:
    """Sharing choices; `share_with_destinations` None means all destinations."""

    share_with_referrer: bool = True
    share_with_destinations: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> Consent:
        """Parse the consent object, applying the contract's defaults."""
        dest = d.get("share_with_destinations")
        return cls(bool(d.get("share_with_referrer", True)), None if dest is None else tuple(dest))


@dataclass(frozen=True, slots=True)
class CodedText:
    """Text with an optional code: an allergy substance ({text, system?, code?})."""

    text: str
    system: str | None
    code: str | None

    @classmethod
    def from_dict(cls, d: Raw) -> CodedText:
        """Parse a substance object."""
        return cls(_req_text(d["text"]), d.get("system"), _text(d.get("code")))


@dataclass(frozen=True, slots=True)
class Code:
    """A coded reason or indication ({system, code, display?}); system is `icd10cm`, `snomed` or a URI."""

    system: str
    code: str
    display: str | None

    @classmethod
    def from_dict(cls, d: Raw) -> Code:
        """Parse an indication/reason object."""
        return cls(d["system"].strip(), _req_text(d["code"]), _text(d.get("display")))


@dataclass(frozen=True, slots=True)
class Allergy:
    """One allergy recorded at screening."""

    id: str
    substance: CodedText
    reaction: str | None
    severity: str | None
    status: str

    @classmethod
    def from_dict(cls, d: Raw) -> Allergy:
        """Parse one `allergies` entry."""
        return cls(
            d["id"],
            CodedText.from_dict(d["substance"]),
            _text(d.get("reaction")),
            d.get("severity"),
            d["status"],
        )


@dataclass(frozen=True, slots=True)
class Patient:
    """A clinic patient (id = clinic MRN)."""

    id: str
    given: tuple[str, ...]
    family: str
    birth_date: date
    sex: str
    phone: str | None = None
    email: str | None = None
    address: Address | None = None
    language: str | None = None
    identifiers: tuple[OtherIdentifier, ...] = ()
    referring_practitioner_id: str | None = None
    consent: Consent | None = None
    allergies: tuple[Allergy, ...] = ()
    no_known_allergies: bool = False

    @classmethod
    def from_dict(cls, d: Raw) -> Patient:
        """Parse a patient record."""
        address = d.get("address")
        consent = d.get("consent")
        return cls(
            id=d["id"],
            given=_texts(d["given"]),
            family=_req_text(d["family"]),
            birth_date=date.fromisoformat(d["birth_date"]),
            sex=d["sex"],
            phone=_text(d.get("phone")),
            email=_text(d.get("email")),
            address=Address.from_dict(address) if address else None,
            language=_text(d.get("language")),
            identifiers=tuple(OtherIdentifier.from_dict(i) for i in d.get("identifiers") or ()),
            referring_practitioner_id=d.get("referring_practitioner_id"),
            consent=Consent.from_dict(consent) if consent is not None else None,
            allergies=tuple(Allergy.from_dict(a) for a in d.get("allergies") or ()),
            no_known_allergies=bool(d.get("no_known_allergies", False)),
        )


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A clinician or referrer."""

    id: str
    given: tuple[str, ...]
    family: str
    role: str
    npi: str | None = None
    organization: str | None = None
    phone: str | None = None
    email: str | None = None
    endpoint: str | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> Practitioner:
        """Parse a practitioner record (`given` may be one string or a list)."""
        return cls(
            id=d["id"],
            given=_texts(d["given"]),
            family=_req_text(d["family"]),
            role=d["role"],
            npi=_text(d.get("npi")),
            organization=_text(d.get("organization")),
            phone=_text(d.get("phone")),
            email=_text(d.get("email")),
            endpoint=d.get("endpoint"),
        )


@dataclass(frozen=True, slots=True)
class Series:
    """Which treatment series a session belongs to, e.g. series 1, session 3 of 6."""

    number: int
    session_number: int
    planned_sessions: int

    @classmethod
    def from_dict(cls, d: Raw) -> Series:
        """Parse a series object."""
        return cls(int(d["number"]), int(d["session_number"]), int(d["planned_sessions"]))


@dataclass(frozen=True, slots=True)
class Amount:
    """A dose, rate or wasted amount as the clinic wrote it ({value, unit})."""

    value: float
    unit: str

    @classmethod
    def from_dict(cls, d: Raw) -> Amount:
        """Parse an amount object."""
        return cls(d["value"], d["unit"])


@dataclass(frozen=True, slots=True)
class MedicationAdministration:
    """One drug given (or not given) during a session."""

    id: str
    drug: str
    route: str
    start: datetime
    status: str
    performer_id: str
    dose: Amount | None = None
    rate: Amount | None = None
    end: datetime | None = None
    site: str | None = None
    reason: str | None = None
    lot_number: str | None = None
    expiration_date: date | None = None
    wasted: Amount | None = None
    witness_id: str | None = None
    total_mg: float | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> MedicationAdministration:
        """Parse one `medications` entry."""
        dose, rate, wasted = d.get("dose"), d.get("rate"), d.get("wasted")
        return cls(
            id=d["id"],
            drug=d["drug"],
            route=d["route"],
            start=_dt(d["start"]),
            status=d["status"],
            performer_id=d["performer_id"],
            dose=Amount.from_dict(dose) if dose else None,
            rate=Amount.from_dict(rate) if rate else None,
            end=_opt_dt(d.get("end")),
            site=_text(d.get("site")),
            reason=_text(d.get("reason")),
            lot_number=_text(d.get("lot_number")),
            expiration_date=_opt_date(d.get("expiration_date")),
            wasted=Amount.from_dict(wasted) if wasted else None,
            witness_id=d.get("witness_id"),
            total_mg=d.get("total_mg"),
        )


VITAL_MEASURES = (
    "systolic",
    "diastolic",
    "heart_rate",
    "resp_rate",
    "spo2",
    "temp_c",
    "etco2",
    "pain_nrs",
    "sedation_moaas",
)


@dataclass(frozen=True, slots=True)
class VitalSigns:
    """One reading time with any subset of measures (None = not measured)."""

    taken_at: datetime
    systolic: float | None = None
    diastolic: float | None = None
    heart_rate: float | None = None
    resp_rate: float | None = None
    spo2: float | None = None
    temp_c: float | None = None
    etco2: float | None = None
    pain_nrs: int | None = None
    sedation_moaas: int | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> VitalSigns:
        """Parse one `vitals` entry."""
        return cls(_dt(d["taken_at"]), **{m: d.get(m) for m in VITAL_MEASURES})


@dataclass(frozen=True, slots=True)
class Assessment:
    """One outcome questionnaire; `answers` are the item scores in order q1..qN."""

    id: str
    instrument: str
    timing: str
    authored: datetime
    answers: tuple[int, ...]
    patient_id: str | None = None
    total: int | None = None

    @classmethod
    def from_dict(cls, d: Raw, patient_id: str | None = None) -> Assessment:
        """Parse an assessment; inside a session pass the session's patient id."""
        items = sorted(d["answers"].items(), key=lambda kv: int(kv[0][1:]))
        return cls(
            id=d["id"],
            instrument=d["instrument"],
            timing=d["timing"],
            authored=_dt(d["authored"]),
            answers=tuple(int(v) for _, v in items),
            patient_id=d.get("patient_id") or patient_id,
            total=d.get("total"),
        )


@dataclass(frozen=True, slots=True)
class AdverseEvent:
    """An adverse event observed during a session."""

    id: str
    kind: str
    severity: str
    onset: datetime
    action: str | None = None
    outcome: str | None = None
    description: str | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> AdverseEvent:
        """Parse one `adverse_events` entry."""
        return cls(
            d["id"],
            d["kind"],
            d["severity"],
            _dt(d["onset"]),
            _text(d.get("action")),
            d.get("outcome"),
            _text(d.get("description")),
        )


@dataclass(frozen=True, slots=True)
class Session:
    """One infusion visit with everything recorded during it."""

    id: str
    patient_id: str
    status: str
    start: datetime
    indication: Code
    weight_kg: float
    attending_id: str
    stop_reason: str | None = None
    end: datetime | None = None
    series: Series | None = None
    nurse_id: str | None = None
    location: str | None = None
    medications: tuple[MedicationAdministration, ...] = ()
    vitals: tuple[VitalSigns, ...] = ()
    assessments: tuple[Assessment, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    note: str | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> Session:
        """Parse a session record with its nested parts."""
        series = d.get("series")
        patient_id = d["patient_id"]
        return cls(
            id=d["id"],
            patient_id=patient_id,
            status=d["status"],
            start=_dt(d["start"]),
            indication=Code.from_dict(d["indication"]),
            weight_kg=d["weight_kg"],
            attending_id=d["attending_id"],
            stop_reason=_text(d.get("stop_reason")),
            end=_opt_dt(d.get("end")),
            series=Series.from_dict(series) if series else None,
            nurse_id=d.get("nurse_id"),
            location=_text(d.get("location")),
            medications=tuple(MedicationAdministration.from_dict(m) for m in d.get("medications") or ()),
            vitals=tuple(VitalSigns.from_dict(v) for v in d.get("vitals") or ()),
            assessments=tuple(Assessment.from_dict(a, patient_id) for a in d.get("assessments") or ()),
            adverse_events=tuple(AdverseEvent.from_dict(a) for a in d.get("adverse_events") or ()),
            note=_text(d.get("note")),
        )


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral from a referring physician."""

    id: str
    patient_id: str
    practitioner_id: str
    authored: datetime
    reason: Code
    note: str | None = None

    @classmethod
    def from_dict(cls, d: Raw) -> Referral:
        """Parse a referral record."""
        return cls(
            d["id"],
            d["patient_id"],
            d["practitioner_id"],
            _dt(d["authored"]),
            Code.from_dict(d["reason"]),
            _text(d.get("note")),
        )


RECORD_TYPES: dict[str, type] = {
    "patient": Patient,
    "practitioner": Practitioner,
    "session": Session,
    "assessment": Assessment,
    "referral": Referral,
}

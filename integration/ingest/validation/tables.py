"""The field tables of every clinic record kind, as in shared/spec/clinic-records.md (version 1)."""

from __future__ import annotations

from integration.ingest.validation import formats
from integration.ingest.validation.engine import Field, Shape
from integration.ingest.validation.instruments import INSTRUMENTS


def _enum(*values: str) -> frozenset[str]:
    return frozenset(values)


def _strings(name: str, *, required: bool = False, nonempty_items: bool = False) -> Field:
    return Field(name, "list", required=required, item=Field("", "string", required=nonempty_items))


def _list_of(name: str, shape: Shape) -> Field:
    return Field(name, "list", item=Field("", "object", shape=shape))


SEVERITY = _enum("mild", "moderate", "severe")
DOSE_UNITS = _enum("mg", "mg/kg", "mcg", "mcg/kg", "g", "mL")
RATE_UNITS = _enum("mg/kg/h", "mg/h", "mcg/kg/h", "mL/h")
WASTE_UNITS = _enum("mg", "mcg", "g", "mL")  # an amount drawn but not given: a mass or a volume
CODE_SYSTEMS = _enum("icd10cm", "snomed")


def _quantity(what: str, units: frozenset[str], *, positive: bool) -> Shape:
    return Shape(
        what,
        Field("value", "number", required=True, lo=0.0, lo_open=positive),
        Field("unit", "string", required=True, enum=units, enum_rule="unit"),
    )


def _coded(what: str) -> Shape:
    return Shape(
        what,
        Field("system", "string", required=True, enum=CODE_SYSTEMS),
        Field("code", "string", required=True),
        Field("display", "string"),
    )


# --- Patient --------------------------------------------------------------------------------------
ALLERGY = Shape(
    "an allergy",
    Field("id", "id", required=True),
    Field(
        "substance",
        "object",
        required=True,
        shape=Shape(
            "an allergy substance",
            Field("text", "string", required=True),
            Field("system", "string", enum=_enum("rxnorm", "snomed")),
            Field("code", "string"),
        ),
    ),
    Field("reaction", "string"),
    Field("severity", "string", enum=SEVERITY),
    Field("status", "string", required=True, enum=_enum("active", "inactive", "resolved")),
)

PATIENT = Shape(
    "a patient record",
    Field("id", "id", required=True),
    _strings("given", required=True, nonempty_items=True),
    Field("family", "string", required=True),
    Field("birth_date", "date", required=True),
    Field("sex", "string", required=True, enum=_enum("female", "male", "other", "unknown")),
    Field("phone", "string"),
    Field("email", "string", fmt=formats.email_problem),
    Field(
        "address",
        "object",
        shape=Shape(
            "an address",
            _strings("line"),
            Field("city", "string"),
            Field("state", "string"),
            Field("postal_code", "string"),
            Field("country", "string", fmt=formats.country_problem),
        ),
    ),
    Field("language", "string", fmt=formats.language_problem),
    _list_of(
        "identifiers",
        Shape(
            "an identifier",
            Field("system", "string", required=True, fmt=formats.uri_problem),
            Field("value", "string", required=True),
        ),
    ),
    Field("referring_practitioner_id", "id"),
    Field(
        "consent",
        "object",
        shape=Shape(
            "a consent",
            Field("share_with_referrer", "boolean"),
            _strings("share_with_destinations", nonempty_items=True),
        ),
    ),
    _list_of("allergies", ALLERGY),
    Field("no_known_allergies", "boolean"),
)

# --- Practitioner ---------------------------------------------------------------------------------
PRACTITIONER = Shape(
    "a practitioner record",
    Field("id", "id", required=True),
    _strings("given", required=True, nonempty_items=True),  # typed as the patient's: spec leaves it blank
    Field("family", "string", required=True),
    Field("npi", "string", fmt=formats.npi_problem),
    Field(
        "role",
        "string",
        required=True,
        enum=_enum("physician", "nurse", "anesthesiologist", "referrer", "other"),
    ),
    Field("organization", "string"),
    Field("phone", "string"),
    Field("email", "string", fmt=formats.email_problem),
    Field("endpoint", "string"),
)

# --- Session and what it nests --------------------------------------------------------------------
MEDICATION = Shape(
    "a medication administration",
    Field("id", "id", required=True),
    Field("drug", "string", required=True, fmt=formats.drug_problem),
    Field("route", "string", required=True, enum=_enum("iv", "im", "intranasal", "po", "sl", "sc")),
    Field("dose", "object", shape=_quantity("a dose", DOSE_UNITS, positive=True)),
    Field("rate", "object", shape=_quantity("a rate", RATE_UNITS, positive=True)),
    Field("start", "datetime", required=True),
    Field("end", "datetime"),
    Field("status", "string", required=True, enum=_enum("completed", "stopped", "not-done")),
    Field("performer_id", "id", required=True),
    Field("site", "string"),
    Field("reason", "string"),
    Field("lot_number", "string"),
    Field("expiration_date", "date"),
    Field("wasted", "object", shape=_quantity("a wasted amount", WASTE_UNITS, positive=False)),
    Field("witness_id", "id"),
    Field("total_mg", "number", lo=0.0),
)

VITAL_RANGES: dict[str, tuple[str, float, float]] = {
    "systolic": ("number", 40, 300),
    "diastolic": ("number", 20, 200),
    "heart_rate": ("number", 20, 250),
    "resp_rate": ("number", 4, 60),
    "spo2": ("number", 50, 100),
    "temp_c": ("number", 30, 45),
    "etco2": ("number", 5, 100),
    "pain_nrs": ("integer", 0, 10),
    "sedation_moaas": ("integer", 0, 5),
}
VITALS = Shape(
    "a vital signs set",
    Field("taken_at", "datetime", required=True),
    *(Field(name, kind, lo=lo, hi=hi) for name, (kind, lo, hi) in VITAL_RANGES.items()),
)
MEASURES = frozenset(VITAL_RANGES)


def _assessment(what: str, *, standalone: bool) -> Shape:
    return Shape(
        what,
        Field("id", "id", required=True),
        Field("patient_id", "id", required=standalone),
        Field("instrument", "string", required=True, enum=frozenset(INSTRUMENTS)),
        Field("timing", "string", required=True, enum=_enum("baseline", "pre", "post", "follow-up")),
        Field("authored", "datetime", required=True),
        Field("answers", "map", required=True),  # keys and values depend on the instrument: rules.assessment
        Field("total", "number"),  # an integer for sums, a number for BPI's mean: rules.assessment
    )


ASSESSMENT = _assessment("an assessment record", standalone=True)
SESSION_ASSESSMENT = _assessment("an assessment", standalone=False)

ADVERSE_EVENT = Shape(
    "an adverse event",
    Field("id", "id", required=True),
    Field(
        "kind",
        "string",
        required=True,
        enum=_enum(
            "nausea",
            "vomiting",
            "hypertension",
            "tachycardia",
            "dissociation",
            "agitation",
            "headache",
            "desaturation",
            "other",
        ),
    ),
    Field("severity", "string", required=True, enum=SEVERITY),
    Field("onset", "datetime", required=True),
    Field("action", "string"),
    Field("outcome", "string", enum=_enum("resolved", "resolving", "not-resolved")),
    Field("description", "string"),
)

SESSION = Shape(
    "a session record",
    Field("id", "id", required=True),
    Field("patient_id", "id", required=True),
    Field(
        "status",
        "string",
        required=True,
        enum=_enum("planned", "in-progress", "completed", "stopped", "cancelled"),
    ),
    Field("stop_reason", "string"),  # required when stopped: rules.session
    Field("start", "datetime", required=True),
    Field("end", "datetime"),
    Field("indication", "object", required=True, shape=_coded("an indication")),
    Field(
        "series",
        "object",
        shape=Shape(
            "a series",
            Field("number", "integer", required=True),  # ranges (>= 1, <= planned) are the `series` rule
            Field("session_number", "integer", required=True),
            Field("planned_sessions", "integer"),
        ),
    ),
    Field("weight_kg", "number", required=True, lo=20, hi=350),
    Field("attending_id", "id", required=True),
    Field("nurse_id", "id"),
    Field("location", "string"),
    _list_of("medications", MEDICATION),
    _list_of("vitals", VITALS),
    _list_of("assessments", SESSION_ASSESSMENT),
    _list_of("adverse_events", ADVERSE_EVENT),
    Field("note", "string"),
)

# --- Referral -------------------------------------------------------------------------------------
REFERRAL = Shape(
    "a referral record",
    Field("id", "id", required=True),
    Field("patient_id", "id", required=True),
    Field("practitioner_id", "id", required=True),
    Field("authored", "datetime", required=True),
    Field("reason", "object", required=True, shape=_coded("a referral reason")),
    Field("note", "string"),
)

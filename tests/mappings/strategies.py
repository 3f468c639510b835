"""Hypothesis strategies for random clinic records that are valid per shared/spec/clinic-records.md."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import strategies as st

INSTRUMENTS = json.loads(
    (Path(__file__).resolve().parents[2] / "mappings" / "terminology" / "instruments.json").read_text(
        encoding="utf-8"
    )
)
DRUGS = (
    "ketamine",
    "esketamine",
    "ondansetron",
    "midazolam",
    "clonidine",
    "glycopyrrolate",
    "magnesium-sulfate",
    "lidocaine",
    "dexmedetomidine",
)
ROUTES = ("iv", "im", "intranasal", "po", "sl", "sc")
DOSE_UNITS = ("mg", "mg/kg", "mcg", "mcg/kg", "g", "mL")
RATE_UNITS = ("mg/kg/h", "mg/h", "mcg/kg/h", "mL/h")
AE_KINDS = (
    "nausea",
    "vomiting",
    "hypertension",
    "tachycardia",
    "dissociation",
    "agitation",
    "headache",
    "desaturation",
    "other",
)
PRACTITIONER_IDS = ("P-ATT-1", "P-ATT-2", "P-RN-1", "P-RN-2", "P-REF-1")

ids = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_./:é", min_size=1, max_size=24)
# Any text the clinic might type, controls and odd whitespace included (not lone surrogates: JSON cannot
# carry them); a required field must contain something besides whitespace (ingest rejects blank ones).
any_text = st.text(max_size=60)
required_text = st.text(min_size=1, max_size=40).filter(lambda s: not s.isspace())
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def aware(draw: st.DrawFn, lo: datetime | None = None, hi: datetime | None = None) -> datetime:
    lo = lo or datetime(2024, 1, 1, tzinfo=UTC)
    hi = hi or datetime(2027, 12, 31, tzinfo=UTC)
    seconds = draw(st.integers(min_value=0, max_value=int((hi - lo).total_seconds())))
    micro = draw(st.sampled_from([0, 0, 0, 500000, 123456]))
    return (lo + timedelta(seconds=seconds, microseconds=micro)).astimezone(draw(offsets))


def iso(d: datetime | date) -> str:
    return d.isoformat()


def npi(prefix9: str) -> str:
    """A 10-digit NPI with a valid Luhn check digit (computed over the 80840 prefix)."""
    digits = [int(c) for c in "80840" + prefix9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return prefix9 + str((10 - total % 10) % 10)


def number(lo: float, hi: float) -> st.SearchStrategy[float | int]:
    return st.one_of(
        st.integers(min_value=int(lo) + 1, max_value=int(hi)),
        st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda x: round(x, 2)),
    )


def optional(d: dict, key: str, strategy: st.SearchStrategy, draw: st.DrawFn) -> None:
    if draw(st.booleans()):
        d[key] = draw(strategy)


@st.composite
def coded(draw: st.DrawFn) -> dict:
    system = draw(st.sampled_from(["icd10cm", "snomed"]))
    if system == "icd10cm":
        code = draw(st.from_regex(r"[A-TV-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", fullmatch=True))
        code = (
            code.lower() if draw(st.booleans()) and code != "F43.10" else code
        )  # ingest accepts either case
    else:
        code = (
            draw(st.sampled_from(["47505003", "21897009", "203082005", "128200000"]))
            if draw(st.booleans())
            else draw(st.from_regex(r"[1-9][0-9]{5,17}", fullmatch=True))
        )
    out = {"system": system, "code": code}
    optional(out, "display", required_text, draw)
    return out


@st.composite
def patients(draw: st.DrawFn) -> dict:
    p = {
        "id": draw(ids),
        "given": draw(st.lists(required_text, min_size=1, max_size=3)),
        "family": draw(required_text),
        "birth_date": iso(draw(st.dates(date(1920, 1, 1), date(2010, 12, 31)))),
        "sex": draw(st.sampled_from(["female", "male", "other", "unknown"])),
    }
    optional(p, "phone", any_text, draw)
    optional(p, "email", any_text, draw)
    if draw(st.booleans()):
        p["address"] = {
            "line": draw(st.lists(any_text, max_size=2)),
            "city": draw(any_text),
            "state": draw(any_text),
            "postal_code": draw(any_text),
            "country": draw(st.sampled_from(["US", "MX", "CA"])),
        }
    optional(p, "language", st.sampled_from(["en-US", "es-MX", "vi", "zh-Hant-TW"]), draw)
    optional(
        p,
        "identifiers",
        st.lists(
            st.fixed_dictionaries(
                {
                    "system": st.sampled_from(
                        ["urn:oid:2.16.840.1.113883.3.9999.1", "https://hospital.example.org/mrn"]
                    ),
                    "value": required_text,
                }
            ),
            max_size=2,
        ),
        draw,
    )
    optional(p, "referring_practitioner_id", st.just("P-REF-1"), draw)
    optional(p, "consent", st.fixed_dictionaries({"share_with_referrer": st.booleans()}), draw)
    allergies = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "id": ids,
                    "substance": st.one_of(
                        st.fixed_dictionaries({"text": required_text}),
                        st.fixed_dictionaries(
                            {
                                "text": required_text,
                                "system": st.sampled_from(["rxnorm", "snomed"]),
                                "code": st.from_regex(r"[1-9][0-9]{3,8}", fullmatch=True),
                            }
                        ),
                    ),
                    "status": st.sampled_from(["active", "inactive", "resolved"]),
                },
                optional={"reaction": any_text, "severity": st.sampled_from(["mild", "moderate", "severe"])},
            ),
            max_size=3,
            unique_by=lambda a: a["id"],
        )
    )
    if allergies:
        p["allergies"] = allergies
    elif draw(st.booleans()):
        p["no_known_allergies"] = draw(st.booleans())
    return p


@st.composite
def practitioners(draw: st.DrawFn) -> dict:
    p = {
        "id": draw(ids),
        "given": draw(st.one_of(required_text, st.lists(required_text, min_size=1, max_size=2))),
        "family": draw(required_text),
        "role": draw(st.sampled_from(["physician", "nurse", "anesthesiologist", "referrer", "other"])),
    }
    optional(p, "npi", st.from_regex(r"[1-2][0-9]{8}", fullmatch=True).map(npi), draw)
    optional(p, "organization", any_text, draw)
    optional(p, "phone", any_text, draw)
    optional(p, "email", any_text, draw)
    optional(p, "endpoint", st.sampled_from(["cascade-ehr", "ohsu"]), draw)
    return p


@st.composite
def assessments(
    draw: st.DrawFn,
    patient_id: str | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> dict:
    key = draw(st.sampled_from(sorted(INSTRUMENTS)))
    shape = INSTRUMENTS[key]
    answers = draw(
        st.lists(st.integers(shape["min"], shape["max"]), min_size=shape["items"], max_size=shape["items"])
    )
    a = {
        "id": draw(ids),
        "instrument": key,
        "timing": draw(st.sampled_from(["baseline", "pre", "post", "follow-up"])),
        "authored": iso(draw(aware(*window) if window else aware())),
        "answers": {f"q{i}": v for i, v in enumerate(answers, 1)},
    }
    if patient_id is not None:
        a["patient_id"] = patient_id
    if shape["scoring"] == "sum" and draw(st.booleans()):
        a["total"] = sum(answers)
    return a


TO_MG = {
    "mg": (1, False, False),
    "mcg": (0.001, False, False),
    "g": (1000, False, False),
    "mg/kg": (1, True, False),
    "mcg/kg": (0.001, True, False),
    "mg/h": (1, False, True),
    "mg/kg/h": (1, True, True),
    "mcg/kg/h": (0.001, True, True),
}


def total_mg(m: dict, weight: float, t0: datetime, t1: datetime | None) -> float | None:
    """The total in mg that ingest would accept (dose x weight, or rate x weight x hours); None for mL."""
    q = m.get("dose") or m["rate"]
    if q["unit"] not in TO_MG:
        return None
    factor, per_kg, per_hour = TO_MG[q["unit"]]
    total = q["value"] * factor * (weight if per_kg else 1)
    if per_hour:
        total *= (t1 - t0).total_seconds() / 3600  # type: ignore[operator]
    return round(total, 3) if total >= 0.001 else None


@st.composite
def medications(draw: st.DrawFn, start: datetime, end: datetime, weight: float = 70) -> dict:
    drug = draw(st.one_of(st.sampled_from(DRUGS), st.sampled_from(["rxnorm:6130", "rxnorm:1740467"])))
    t0 = draw(aware(start, end))
    m = {
        "id": draw(ids),
        "drug": drug,
        "route": draw(st.sampled_from(ROUTES)),
        "start": iso(t0),
        "status": draw(st.sampled_from(["completed", "stopped", "not-done"])),
        "performer_id": draw(st.sampled_from(PRACTITIONER_IDS)),
    }
    if draw(st.booleans()):  # exactly one of dose and rate (ingest rule)
        m["dose"] = {"value": draw(number(0.01, 500)), "unit": draw(st.sampled_from(DOSE_UNITS))}
        t1 = draw(aware(t0 + timedelta(minutes=1), t0 + timedelta(hours=2))) if draw(st.booleans()) else None
    else:
        m["rate"] = {"value": draw(number(0.01, 500)), "unit": draw(st.sampled_from(RATE_UNITS))}
        t1 = draw(aware(t0 + timedelta(minutes=1), t0 + timedelta(hours=6)))  # an infusion needs its end
    if t1 is not None:
        m["end"] = iso(t1)
    total = total_mg(m, weight, t0, t1)
    if total is not None and draw(st.booleans()):
        m["total_mg"] = total
    optional(m, "site", any_text, draw)
    optional(m, "reason", any_text, draw)
    optional(m, "lot_number", any_text, draw)
    optional(m, "expiration_date", st.dates(date(2025, 1, 1), date(2030, 12, 31)).map(iso), draw)
    if draw(st.booleans()):
        m["wasted"] = {
            "value": draw(number(0.01, 100)),
            "unit": draw(st.sampled_from(["mg", "mcg", "g", "mL"])),
        }
        m["witness_id"] = draw(st.sampled_from(PRACTITIONER_IDS))
    return m


@st.composite
def vital_sets(draw: st.DrawFn, when: datetime) -> dict:
    v: dict = {"taken_at": iso(when)}
    if draw(st.booleans()):
        sys_ = draw(st.integers(60, 300))
        v["systolic"] = sys_
        if draw(st.booleans()):
            v["diastolic"] = draw(st.integers(20, min(200, sys_ - 1)))
    elif draw(st.booleans()):
        v["diastolic"] = draw(st.integers(20, 120))
    for key, lo, hi in (
        ("heart_rate", 20, 250),
        ("resp_rate", 4, 60),
        ("spo2", 50, 100),
        ("temp_c", 30, 45),
        ("etco2", 5, 100),
    ):
        optional(v, key, number(lo, hi), draw)
    optional(v, "pain_nrs", st.integers(0, 10), draw)
    optional(v, "sedation_moaas", st.integers(0, 5), draw)
    return v


@st.composite
def sessions(draw: st.DrawFn) -> dict:
    start = draw(aware())
    status = draw(st.sampled_from(["planned", "in-progress", "completed", "stopped", "cancelled"]))
    end = start + timedelta(minutes=draw(st.integers(10, 300)))
    weight = draw(number(20, 350))
    s = {
        "id": draw(ids),
        "patient_id": draw(ids),
        "status": status,
        "start": iso(start),
        "indication": draw(coded()),
        "weight_kg": weight,
        "attending_id": draw(st.sampled_from(PRACTITIONER_IDS)),
    }
    if status in ("completed", "stopped"):
        s["end"] = iso(end.astimezone(draw(offsets)))
    if status == "stopped":
        s["stop_reason"] = draw(required_text)
    if draw(st.booleans()):
        planned = draw(st.integers(1, 12))
        s["series"] = {
            "number": draw(st.integers(1, 5)),
            "session_number": draw(st.integers(1, planned)),
            "planned_sessions": planned,
        }
    optional(s, "nurse_id", st.sampled_from(PRACTITIONER_IDS), draw)
    optional(s, "location", any_text, draw)
    optional(s, "note", st.text(max_size=200), draw)
    window = (start - timedelta(hours=2), end + timedelta(hours=2))
    s["medications"] = draw(
        st.lists(medications(start, end, weight), max_size=3, unique_by=lambda m: m["id"])
    )
    minutes = draw(
        st.lists(st.integers(-120, int((end - start).total_seconds() // 60) + 120), max_size=3, unique=True)
    )
    s["vitals"] = [
        draw(vital_sets((start + timedelta(minutes=m)).astimezone(draw(offsets)))) for m in minutes
    ]
    s["assessments"] = draw(st.lists(assessments(window=window), max_size=2, unique_by=lambda a: a["id"]))
    s["adverse_events"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "id": ids,
                    "kind": st.sampled_from(AE_KINDS),
                    "severity": st.sampled_from(["mild", "moderate", "severe"]),
                    "onset": aware(*window).map(iso),
                },
                optional={
                    "action": any_text,
                    "outcome": st.sampled_from(["resolved", "resolving", "not-resolved"]),
                    "description": any_text,
                },
            ),
            max_size=2,
            unique_by=lambda a: a["id"],
        )
    )
    for key in ("medications", "vitals", "assessments", "adverse_events"):
        if not s[key] and draw(st.booleans()):
            del s[key]
    return s


@st.composite
def referrals(draw: st.DrawFn) -> dict:
    r = {
        "id": draw(ids),
        "patient_id": draw(ids),
        "practitioner_id": "P-REF-1",
        "authored": iso(draw(aware())),
        "reason": draw(coded()),
    }
    optional(r, "note", st.text(max_size=200), draw)
    return r


RECORDS = {
    "patient": patients(),
    "practitioner": practitioners(),
    "session": sessions(),
    "assessment": ids.flatmap(lambda pid: assessments(patient_id=pid)),
    "referral": referrals(),
}

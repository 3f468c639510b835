"""Deterministic synthetic clinic records (invented people only) for tests, the benchmark and the demo."""

from __future__ import annotations

import argparse
import json
import random
from datetime import date, datetime, timedelta, timezone

from integration.ingest.validation.formats import luhn_ok
from integration.ingest.validation.instruments import INSTRUMENTS

FIRST_DAY = date(2026, 1, 5)
_FEMALE = ("Ana", "Beth", "Carmen", "Dana", "Elena", "Fiona", "Grace", "Hana", "Iris", "Julia", "Lena")
_MALE = ("Aaron", "Ben", "Carlos", "David", "Eli", "Felix", "Gabe", "Hugo", "Ivan", "Jonah", "Leo")
_NEUTRAL = ("Alex", "Jordan", "Kai", "Quinn", "Riley", "Sam")
# Invented surnames, so that no generated name is likely to be a real person's.
_FAMILY = (
    "Ashgrove",
    "Brindlecomb",
    "Copperfen",
    "Dunmarrow",
    "Elderquist",
    "Fallowmere",
    "Glimmerholt",
    "Hazelbrook",
    "Ironvale",
    "Juniperra",
    "Kestrelby",
    "Larkspurne",
    "Mossgrave",
    "Nettlefield",
    "Oakhallow",
    "Pemberwick",
    "Quillfeather",
    "Rushmoreau",
    "Sorrelby",
    "Thistlewood",
)
_HOSPITAL_MRN = "https://hospital.example.org/fhir/sid/mrn"
_STREETS = ("Alder St", "Birch Ave", "Cedar Ln", "Dogwood Ct", "Elm Way", "Fir Pl")
_CITIES = (
    ("Seattle", "WA", "981"),
    ("Tacoma", "WA", "984"),
    ("Portland", "OR", "972"),
    ("Spokane", "WA", "992"),
)
_ROLES = (
    "physician",
    "nurse",
    "referrer",
    "nurse",
    "anesthesiologist",
    "referrer",
    "physician",
    "nurse",
    "referrer",
    "other",
)
# (group, system, code, display); the group picks the questionnaires.
_INDICATIONS = (
    ("depression", "icd10cm", "F33.2", "Major depressive disorder, recurrent severe w/o psychotic features"),
    ("depression", "icd10cm", "F33.1", "Major depressive disorder, recurrent, moderate"),
    ("depression", "icd10cm", "F32.A", "Depression, unspecified"),
    ("depression", "snomed", "35489007", "Depressive disorder"),
    ("ptsd", "icd10cm", "F43.12", "Post-traumatic stress disorder, chronic"),
    ("pain", "icd10cm", "G90.50", "Complex regional pain syndrome I, unspecified"),
    ("pain", "icd10cm", "M79.7", "Fibromyalgia"),
)
_ALLERGIES = (
    ({"text": "penicillin", "system": "rxnorm", "code": "7980"}, "hives"),
    ({"text": "codeine", "system": "rxnorm", "code": "2670"}, "nausea"),
    ({"text": "latex", "system": "snomed", "code": "111088007"}, "rash"),
    ({"text": "peanut", "system": "snomed", "code": "256349002"}, "anaphylaxis"),
    ({"text": "adhesive tape"}, "skin irritation"),
)
_STOPS = (
    ("hypertension", "sustained blood pressure above 180/110"),
    ("dissociation", "patient asked to stop: distressing dissociation"),
)


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _pacific(day: date) -> timezone:
    """US Pacific offset of a day: -07:00 from the second Sunday of March to the first Sunday of November."""
    march, november = date(day.year, 3, 8), date(day.year, 11, 1)
    dst_start = march + timedelta(days=(6 - march.weekday()) % 7)
    dst_end = november + timedelta(days=(6 - november.weekday()) % 7)
    return timezone(timedelta(hours=-7 if dst_start <= day < dst_end else -8))


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=_pacific(day))


def npi(rng: random.Random) -> str:
    """A 10-digit NPI with a valid check digit (fabricated, so unlikely to be assigned)."""
    body = str(rng.choice((1, 2))) + "".join(str(rng.randrange(10)) for _ in range(8))
    return next(body + d for d in "0123456789" if luhn_ok("80840" + body + d))


def _phone(rng: random.Random) -> str:
    return f"+1-206-555-01{rng.randrange(100):02d}"  # 555-0100..0199 is reserved for fiction


def practitioners(rng: random.Random, n: int, *, first: int = 1) -> list[dict]:
    """`n` practitioners, roles cycling so that any 5 include a physician, nurses and a referrer."""
    out = []
    for i in range(first, first + n):
        role = _ROLES[(i - 1) % len(_ROLES)]
        given, family = rng.choice(_FEMALE + _MALE + _NEUTRAL), rng.choice(_FAMILY)
        rec: dict = {
            "id": f"prac-{i:04d}",
            "given": [given],
            "family": family,
            "role": role,
            "npi": npi(rng),
            "email": f"{given}.{family}@example.org".lower(),
        }
        if role == "referrer":
            rec["organization"] = f"{rng.choice(_FAMILY)} Behavioral Health"
            rec["endpoint"] = rng.choice(("referrer-ehr-north", "referrer-ehr-south"))
            rec["phone"] = _phone(rng)
        out.append(rec)
    return out


def _profile(patient_id: str) -> tuple[tuple[str, str, str, str], float]:
    """(indication, usual weight) of a patient: seeded by the id so sessions and referrals agree."""
    own = random.Random(f"profile:{patient_id}")  # noqa: S311 -- synthetic data, not security
    return own.choice(_INDICATIONS), round(own.uniform(52, 118), 1)


def patients(rng: random.Random, n: int, practitioner_ids: list[str], *, first: int = 1) -> list[dict]:
    """`n` patients, some referred by one of `practitioner_ids`, some with allergies."""
    out = []
    for i in range(first, first + n):
        sex = rng.choices(("female", "male", "other", "unknown"), (48, 48, 3, 1))[0]
        names = _FEMALE if sex == "female" else _MALE if sex == "male" else _NEUTRAL
        given = [rng.choice(names)] + ([rng.choice(names)] if rng.random() < 0.3 else [])
        family = rng.choice(_FAMILY)
        city, state, zip3 = rng.choice(_CITIES)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
        rec: dict = {
            "id": f"MRN{100000 + i}",
            "given": given,
            "family": family,
            "birth_date": born.isoformat(),
            "sex": sex,
            "phone": _phone(rng),
            "address": {
                "line": [f"{rng.randrange(100, 9999)} {rng.choice(_STREETS)}"],
                "city": city,
                "state": state,
                "postal_code": f"{zip3}{rng.randrange(100):02d}",
                "country": "US",
            },
            "language": rng.choices(("en-US", "es-MX", "vi"), (85, 12, 3))[0],
            "identifiers": [{"system": _HOSPITAL_MRN, "value": f"H{rng.randrange(10**7)}"}],
            "consent": {"share_with_referrer": rng.random() < 0.9},
        }
        if rng.random() < 0.5:
            rec["email"] = f"{given[0]}.{family}{rng.randrange(100)}@example.com".lower()
        if practitioner_ids and rng.random() < 0.85:
            rec["referring_practitioner_id"] = rng.choice(practitioner_ids)
        if rng.random() < 0.3:
            rec["consent"]["share_with_destinations"] = ["referrer-ehr-north"]
        picks = rng.sample(_ALLERGIES, rng.choices((0, 1, 2), (65, 28, 7))[0])
        if picks:
            rec["allergies"] = [
                {
                    "id": f"{rec['id']}-alg{j}",
                    "substance": dict(substance),
                    "reaction": reaction,
                    "severity": rng.choice(("mild", "moderate")),
                    "status": "active",
                }
                for j, (substance, reaction) in enumerate(picks, 1)
            ]
        elif rng.random() < 0.8:
            rec["no_known_allergies"] = True
        out.append(rec)
    return out


def _answers(rng: random.Random, code: str, burden: float) -> tuple[dict[str, int], int | float]:
    inst = INSTRUMENTS[code]
    high = min(inst.max, inst.max * burden * 2)
    answers = {
        k: min(inst.max, max(inst.min, round(rng.triangular(inst.min, high, inst.max * burden))))
        for k in inst.keys
    }
    score = sum(answers.values())
    return answers, (round(score / inst.items, 1) if inst.scoring == "mean" else score)


def _assessment(rng: random.Random, aid: str, code: str, timing: str, when: datetime, burden: float) -> dict:
    answers, total = _answers(rng, code, burden)
    return {
        "id": aid,
        "instrument": code,
        "timing": timing,
        "authored": _ts(when),
        "answers": answers,
        "total": total,
    }


def _vitals(
    rng: random.Random, t0: datetime, inf_start: datetime, inf_end: datetime, pain: bool
) -> list[dict]:
    sys0, dia0, hr0 = rng.randint(108, 134), rng.randint(66, 84), rng.randint(58, 86)
    out: list[dict] = []
    t = t0 + timedelta(minutes=5)
    while len(out) < 15 and t <= inf_end + timedelta(minutes=40):
        during = inf_start <= t <= inf_end
        effect = (t - inf_start) / (inf_end - inf_start) if during else 0.3 if t > inf_end else 0.0
        rise = 0.15 * min(effect, 1.0) if during else 0.05 * effect
        systolic = round(sys0 * (1 + rise) + rng.uniform(-4, 4))
        v: dict = {
            "taken_at": _ts(t),
            "systolic": systolic,
            "diastolic": min(systolic - 25, round(dia0 * (1 + rise * 0.8) + rng.uniform(-3, 3))),
            "heart_rate": round(hr0 * (1 + rise * 0.6) + rng.uniform(-3, 3)),
            "resp_rate": rng.randint(12, 18),
            "spo2": rng.randint(95, 100),
            "sedation_moaas": rng.choice((3, 4, 4, 5)) if during else 5,
        }
        if during:
            v["etco2"] = rng.randint(34, 43)
        if not out or t + timedelta(minutes=10) > inf_end + timedelta(minutes=40):
            v["temp_c"] = round(rng.uniform(36.4, 37.2), 1)
            if pain:
                v["pain_nrs"] = rng.randint(2, 8)
        out.append(v)
        t += timedelta(minutes=rng.choice((5, 5, 5, 6, 7, 8, 10)))
    return out


def _medications(
    rng: random.Random,
    sid: str,
    weight: float,
    inf: tuple[datetime, datetime],
    stopped: bool,
    nurse: str,
    attending: str,
) -> list[dict]:
    start, end = inf
    per_kg = rng.choice((0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0))
    if stopped:  # the dose actually given before the infusion was stopped
        per_kg = round(per_kg * (end - start) / timedelta(minutes=40), 2)
    keta: dict = {
        "id": f"{sid}-med1",
        "drug": "ketamine",
        "route": "iv",
        "dose": {"value": per_kg, "unit": "mg/kg"},
        "start": _ts(start),
        "end": _ts(end),
        "status": "stopped" if stopped else "completed",
        "performer_id": nurse,
        "site": rng.choice(("left antecubital", "right antecubital")),
        "lot_number": f"KT{rng.randrange(10_000, 99_999)}",
        "expiration_date": (start.date() + timedelta(days=rng.randrange(120, 700))).isoformat(),
        "total_mg": round(per_kg * weight, 1),
    }
    if rng.random() < 0.4:
        keta["wasted"] = {"value": round(rng.uniform(2, 30), 1), "unit": "mg"}
        keta["witness_id"] = attending
    meds = [keta]
    if rng.random() < 0.4:
        meds.append(
            {
                "id": f"{sid}-med{len(meds) + 1}",
                "drug": "ondansetron",
                "route": "iv",
                "dose": {"value": 4, "unit": "mg"},
                "start": _ts(start - timedelta(minutes=5)),
                "status": "completed",
                "performer_id": nurse,
                "reason": "nausea prophylaxis",
                "total_mg": 4,
            }
        )
    if rng.random() < 0.15:
        mg = rng.choice((1, 2))
        meds.append(
            {
                "id": f"{sid}-med{len(meds) + 1}",
                "drug": "midazolam",
                "route": "iv",
                "dose": {"value": mg, "unit": "mg"},
                "start": _ts(start + timedelta(minutes=12)),
                "status": "completed",
                "performer_id": nurse,
                "reason": "anxiety",
                "total_mg": mg,
            }
        )
    return meds


_QUESTIONNAIRES = {
    "depression": ("phq9", "gad7", "madrs"),
    "ptsd": ("pcl5", "phq9"),
    "pain": ("bpi_severity", "phq9"),
}


def _session(
    rng: random.Random, pid: str, k: int, day: date, attending: str, nurse: str | None, status: str
) -> dict:
    (group, system, code, display), usual = _profile(pid)
    sid = f"{pid}-S{k + 1:03d}"
    t0 = _at(day, rng.randint(8, 15), rng.choice((0, 15, 30, 45)))
    weight = round(usual + rng.uniform(-1.0, 1.0), 1)
    rec: dict = {
        "id": sid,
        "patient_id": pid,
        "status": status,
        "start": _ts(t0),
        "indication": {"system": system, "code": code, "display": display},
        "series": {"number": k // 6 + 1, "session_number": k % 6 + 1, "planned_sessions": 6},
        "weight_kg": weight,
        "attending_id": attending,
        "location": f"Chair {rng.randint(1, 6)}",
    }
    if nurse is not None:
        rec["nurse_id"] = nurse
    if status == "planned":
        return rec
    stopped = status == "stopped"
    inf_start = t0 + timedelta(minutes=15)
    inf_end = inf_start + timedelta(minutes=rng.randint(15, 30) if stopped else 40)
    performer = nurse or attending
    rec["medications"] = _medications(rng, sid, weight, (inf_start, inf_end), stopped, performer, attending)
    rec["vitals"] = _vitals(rng, t0, inf_start, inf_end, group == "pain")
    burden = max(0.25, 0.8 - 0.08 * k)
    pre = _QUESTIONNAIRES[group][: 2 + (rng.random() < 0.3)]
    timing = "baseline" if k == 0 else "pre"
    rec["assessments"] = [
        _assessment(rng, f"{sid}-a{j}", c, timing, t0 + timedelta(minutes=3 + j), burden)
        for j, c in enumerate(pre, 1)
    ]
    post_at = inf_end + timedelta(minutes=rng.randint(20, 30))
    rec["assessments"].append(_assessment(rng, f"{sid}-a{len(pre) + 1}", "cadss", "post", post_at, 0.15))
    if rng.random() < 0.2:
        rec["assessments"][0]["patient_id"] = pid
    kind, reason = rng.choice(_STOPS)
    if stopped or rng.random() < 0.15:
        kind = kind if stopped else rng.choice(("nausea", "dissociation", "headache", "hypertension"))
        rec["adverse_events"] = [
            {
                "id": f"{sid}-ae1",
                "kind": kind,
                "severity": "moderate" if stopped else "mild",
                "onset": _ts(inf_start + timedelta(minutes=10)),
                "action": "infusion stopped" if stopped else "observed",
                "outcome": "resolved",
            }
        ]
    if stopped:
        rec["stop_reason"] = reason
    elif rng.random() < 0.3:
        rec["note"] = "Tolerated the infusion; ambulating with assistance at discharge; driver present."
    last_vitals = datetime.fromisoformat(rec["vitals"][-1]["taken_at"])
    rec["end"] = _ts(max(last_vitals, post_at) + timedelta(minutes=5))
    return rec


def sessions(
    rng: random.Random,
    patient_ids: list[str],
    attending_ids: list[str],
    nurse_ids: list[str],
    n_per_patient: int,
    *,
    first_day: date = FIRST_DAY,
) -> list[dict]:
    """`n_per_patient` sessions per patient, 2-4 days apart, in series of 6; some stopped, a few planned."""
    out = []
    for pid in patient_ids:
        day = first_day + timedelta(days=rng.randrange(28))
        for k in range(n_per_patient):
            roll = rng.random()
            last = k == n_per_patient - 1
            status = "stopped" if roll < 0.07 else "planned" if last and roll > 0.95 else "completed"
            nurse = rng.choice(nurse_ids) if nurse_ids else None
            out.append(_session(rng, pid, k, day, rng.choice(attending_ids), nurse, status))
            day += timedelta(days=rng.randint(2, 4))
    return out


def referrals(
    rng: random.Random, patient_records: list[dict], referrer_ids: list[str], *, first_day: date = FIRST_DAY
) -> list[dict]:
    """One referral for most patients, from their referring practitioner, before the first session."""
    out = []
    for p in patient_records:
        by = p.get("referring_practitioner_id") or (rng.choice(referrer_ids) if referrer_ids else None)
        if by is None or rng.random() > 0.9:
            continue
        (_, system, code, display), _ = _profile(p["id"])
        day = first_day - timedelta(days=rng.randint(7, 40))
        rec = {
            "id": f"ref-{p['id']}",
            "patient_id": p["id"],
            "practitioner_id": by,
            "authored": _ts(_at(day, rng.randint(9, 16), rng.randrange(60))),
            "reason": {"system": system, "code": code, "display": display},
        }
        if rng.random() < 0.5:
            rec["note"] = "Treatment-resistant course; two adequate antidepressant trials. Please evaluate."
        out.append(rec)
    return out


def follow_ups(rng: random.Random, session_records: list[dict]) -> list[dict]:
    """Standalone follow-up PHQ-9s, two weeks after each patient's last session."""
    last: dict[str, dict] = {s["patient_id"]: s for s in session_records}
    out = []
    for pid, s in last.items():
        if rng.random() < 0.7:
            when = datetime.fromisoformat(s["start"]) + timedelta(days=14, hours=2)
            rec = _assessment(rng, f"{pid}-fu1", "phq9", "follow-up", when, 0.3)
            out.append({"patient_id": pid, **rec})
    return out


def batch(seed: int, n_patients: int, sessions_per_patient: int) -> dict[str, list[dict]]:
    """A whole batch-API body of valid records, identical for the same arguments."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic data, not security
    pracs = practitioners(rng, max(8, n_patients // 8 + 6))
    referrers = [p["id"] for p in pracs if p["role"] == "referrer"]
    attendings = [p["id"] for p in pracs if p["role"] in ("physician", "anesthesiologist")]
    nurses = [p["id"] for p in pracs if p["role"] == "nurse"]
    pats = patients(rng, n_patients, referrers)
    sess = sessions(rng, [p["id"] for p in pats], attendings, nurses, sessions_per_patient)
    return {
        "practitioners": pracs,
        "patients": pats,
        "referrals": referrals(rng, pats, referrers),
        "sessions": sess,
        "assessments": follow_ups(rng, sess),
    }


def main(argv: list[str] | None = None) -> None:
    """Demo: print a synthetic batch as JSON (`python -m integration.ingest.synthetic --seed 7`)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(batch(args.seed, args.patients, args.sessions), indent=2))


if __name__ == "__main__":
    main()

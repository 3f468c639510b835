"""Format checks of the clinic record contract (times, ids, codes, NPI), compiled once for every intake."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

# re.ASCII and [0-9] everywhere: non-ASCII digits and letters must not pass (int() would accept them).
_DATE = re.compile(r"((?!0000)[0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])", re.ASCII)
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DAYS_BEFORE_MONTH = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_TWO_DIGITS = {f"{i:02d}": i for i in range(100)}  # a dict lookup is several times cheaper than int()
_SECONDS = {f"{i:02d}": i for i in range(60)}  # no leap second 60: not representable downstream
_CLOCK = {f"{h:02d}:{m:02d}": h * 3600 + m * 60 for h in range(24) for m in range(60)}  # no 24:00 either
LONGEST_DATETIME = 64  # longer strings are never datetimes; keeps them out of the parse cache


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@lru_cache(maxsize=1024)
def day_number(text: str) -> int | None:
    """Day number (0001-01-01 is 1) of a real calendar date YYYY-MM-DD, else None; memoised."""
    m = _DATE.fullmatch(text)
    if m is None:
        return None
    year, month, day = int(m[1]), _TWO_DIGITS[m[2]], _TWO_DIGITS[m[3]]
    leap = _leap(year)
    if day > 28 and day > (29 if month == 2 and leap else _MONTH_DAYS[month]):
        return None
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + _DAYS_BEFORE_MONTH[month] + (month > 2 and leap) + day


def _instant(text: str) -> int | str:
    """Microseconds of `YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|+HH:MM|-HH:MM)`, else the rule it breaks.

    Parsed by fixed positions and table look-ups rather than a regex; the offset may go up to 23:59 either
    way, as RFC 3339 allows.
    """
    if len(text) < 16 or text[10] != "T":
        return "datetime"
    day = day_number(text[:10])
    clock = _CLOCK.get(text[11:16])
    if day is None or clock is None:
        return "datetime"
    rest = text[16:]  # "" or ":SS" or ":SS.fraction", then the offset
    offset = None
    if rest[-1:] == "Z":
        offset, rest = 0, rest[:-1]
    elif len(rest) >= 6 and rest[-6] in "+-":
        shift = _CLOCK.get(rest[-5:])
        if shift is not None:
            offset, rest = (shift if rest[-6] == "+" else -shift), rest[:-6]
    micro = 0
    if rest:
        second = _SECONDS.get(rest[1:3])
        if rest[0] != ":" or second is None:
            return "datetime"
        clock += second
        if len(rest) > 3:
            fraction = rest[4:]
            if rest[3] != "." or not fraction or not fraction.isascii() or not fraction.isdigit():
                return "datetime"
            micro = int(fraction[:6].ljust(6, "0"))  # microseconds, as Python's datetime: no rule is finer
    if offset is None:
        return "datetime-offset"
    return ((day - 1) * 86400 + clock - offset) * 1_000_000 + micro


# Datetimes split into two parts that the parse checks independently: the date (text[:10]) and the rest
# (text[10:], "T" then the clock and the offset). A record's datetimes share few dates, and clinics write the
# rest in few ways (on the minute, one or two offsets), so both memos stay small and nearly every datetime is
# two look-ups. Only parts of valid datetimes are kept, so a hit on both is a valid datetime whose instant is
# the sum; anything else takes the full parse. (The compiled field checks, compiler.py, look them up in line.)
DAY_PARTS: dict[str, int] = {}  # "2026-03-02" -> microseconds from 0001-01-01T00:00 to that day
TIME_PARTS: dict[str, int] = {}  # "T09:15:00-08:00" -> microseconds from the day's start, offset applied
_KEPT = 8192  # per memo; a full memo is emptied, so odd senders (unique fractions of seconds) cannot clog it
_DAY = 86400 * 1_000_000


def parse_instant(text: str) -> int | str:
    """Microseconds since 0001-01-01T00:00Z of an offset date-time, or the rule it breaks (`datetime`...)."""
    if len(text) > LONGEST_DATETIME:  # never a datetime; keeps long text out of the memos
        return "datetime"
    day = DAY_PARTS.get(text[:10])
    if day is not None:
        clock = TIME_PARTS.get(text[10:])
        if clock is not None:
            return day + clock
    parsed = _instant(text)
    if type(parsed) is int:
        day = (day_number(text[:10]) - 1) * _DAY  # type: ignore[operator]  # a valid date: the parse passed
        for memo, part, value in ((DAY_PARTS, text[:10], day), (TIME_PARTS, text[10:], parsed - day)):
            if len(memo) >= _KEPT:
                memo.clear()
            memo[part] = value
    return parsed


def instant(value: object) -> int | None:
    """The instant of a valid datetime field value, else None (cross-field rules then skip)."""
    if isinstance(value, str):
        parsed = parse_instant(value)
        if type(parsed) is int:
            return parsed
    return None


def parse_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a real calendar date written YYYY-MM-DD, else None."""
    if day_number(text) is None:
        return None
    return int(text[:4]), _TWO_DIGITS[text[5:7]], _TWO_DIGITS[text[8:10]]


# --- ids ----------------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_ID = 128


def id_problem(text: str) -> str | None:
    """Why a string cannot be a clinic id (it becomes part of FHIR ids and URLs), or None."""
    if not text:
        return "expected a non-empty id"
    if len(text) > MAX_ID:
        return f"expected an id of at most {MAX_ID} characters"
    if text[0].isspace() or text[-1].isspace():
        return "expected an id without leading or trailing whitespace"
    if _CONTROL.search(text) is not None:
        return "expected an id without control characters"
    return None


# --- NPI: 10 digits, Luhn over 80840 + the 10 digits (CMS NPI check digit) -------------------------------
_NPI = re.compile(r"[0-9]{10}", re.ASCII)


def luhn_ok(digits: str) -> bool:
    """Luhn check over ASCII digits, the last being the check digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def npi_problem(text: str) -> tuple[str, str] | None:
    """`npi-format` or `npi-check-digit` with a message, or None for a valid NPI."""
    if _NPI.fullmatch(text) is None:
        return "npi-format", "expected an NPI of exactly 10 digits"
    if not luhn_ok("80840" + text):
        return "npi-check-digit", "expected an NPI whose last digit is its Luhn check digit (prefix 80840)"
    return None


# --- SNOMED CT concept id: Verhoeff check digit, partition 00 (core) or 10 (extension) ----------------------
_SCTID = re.compile(r"[1-9][0-9]{5,17}", re.ASCII)
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_ok(digits: str) -> bool:
    """Verhoeff check over ASCII digits, the last being the check digit."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][ord(ch) - 48]]
    return c == 0


def snomed_problem(text: str) -> str | None:
    """Why `text` is not a SNOMED CT concept id, or None."""
    if _SCTID.fullmatch(text) is None:
        return "expected a SNOMED CT concept id: 6 to 18 digits without a leading zero"
    if text[-3:-1] not in ("00", "10"):
        return "expected a SNOMED CT concept id (partition 00 or 10); this is not a concept id"
    if not verhoeff_ok(text):
        return "expected a SNOMED CT concept id whose last digit is its Verhoeff check digit"
    return None


# --- ICD-10-CM: letter, digit, digit-or-letter (C4A, M1A, Z3A); then a dot and 1-4 more (F32.A, T36.0X1A) --
_ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?", re.ASCII | re.IGNORECASE)


def icd10cm_problem(text: str) -> str | None:
    """Why `text` is not shaped like an ICD-10-CM code, or None."""
    if _ICD10CM.fullmatch(text) is None:
        return "expected an ICD-10-CM code such as F33.2 or F32.A (3 characters, then a dot and 1 to 4 more)"
    return None


_RXNORM = re.compile(r"[0-9]+", re.ASCII)


def rxnorm_problem(text: str) -> str | None:
    """Why `text` is not an RxNorm concept id (RxCUI, digits only), or None."""
    return None if _RXNORM.fullmatch(text) else "expected an RxNorm code (RxCUI): digits only"


# --- BCP 47 (RFC 5646 langtag, private use, irregular grandfathered) -----------------------------------
_BCP47 = re.compile(
    # The grammar also allows 4- and 5-8-letter languages, but none is registered: "english" is a mistake.
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}"  # language with up to 3 extlangs
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
    r"|x(?:-[a-z0-9]{1,8})+"
    r"|en-gb-oed|i-(?:ami|bnn|default|enochian|hak|klingon|lux|mingo|navajo|pwn|tao|tay|tsu)"
    r"|sgn-(?:be-fr|be-nl|ch-de))",
    re.ASCII | re.IGNORECASE,
)


def language_problem(text: str) -> tuple[str, str] | None:
    """`language` unless `text` is shaped like a BCP 47 tag (es-MX, en-US, zh-Hant-TW)."""
    if _BCP47.fullmatch(text):
        return None
    return "language", "expected a BCP 47 language tag such as en-US or es-MX"


_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f-\x9f]+")


def uri_problem(text: str) -> tuple[str, str] | None:
    """`uri` unless `text` is an absolute URI (scheme ":" ...), as FHIR Identifier.system requires."""
    if _URI.fullmatch(text):
        return None
    return "uri", "expected an absolute URI such as urn:oid:2.16.840.1.113883.4.1 or https://example.org/mrn"


_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(?:\.[^@\s\x00-\x1f\x7f.]+)+")


def email_problem(text: str) -> tuple[str, str] | None:
    """`email` unless `text` looks like local@domain.tld (at most 254 characters)."""
    if len(text) <= 254 and _EMAIL.fullmatch(text):
        return None
    return "email", "expected an email address such as name@example.org"


def _load_countries() -> frozenset[str]:
    path = Path(__file__).with_name("iso3166_alpha2.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


COUNTRIES = _load_countries()


def country_problem(text: str) -> tuple[str, str] | None:
    """`country` unless `text` is an assigned ISO 3166-1 alpha-2 code (upper case, e.g. US, MX)."""
    if text in COUNTRIES:
        return None
    return "country", "expected an ISO 3166-1 alpha-2 country code such as US or MX"


CLINIC_DRUGS = frozenset(
    {
        "ketamine",
        "esketamine",
        "ondansetron",
        "midazolam",
        "clonidine",
        "glycopyrrolate",
        "magnesium-sulfate",
        "lidocaine",
        "dexmedetomidine",
    }
)
_RXNORM_DRUG = re.compile(r"rxnorm:[0-9]+", re.ASCII)


def drug_problem(text: str) -> tuple[str, str] | None:
    """`drug` unless `text` is a clinic drug code or `rxnorm:` followed by digits."""
    if text in CLINIC_DRUGS or _RXNORM_DRUG.fullmatch(text):
        return None
    return "drug", "expected a clinic drug code (" + ", ".join(sorted(CLINIC_DRUGS)) + ") or rxnorm:NNNN"

"""Turn a clinic CSV export into the record dicts the JSON API takes, so both go through one validation.

Files (shared/spec/clinic-records.md, "CSV"), all optional, UTF-8 with or without a BOM, RFC 4180, a header
row: `practitioners.csv`, `patients.csv`, `referrals.csv`, `sessions.csv` and `assessments.csv` hold records;
`medications.csv`, `vitals.csv` and `adverse_events.csv` hold session items and need a `session_id` column;
a row of `assessments.csv` with a `session_id` is an assessment of that session, one without is standalone.
Item rows are attached to their session in file order; a `session_id` naming no row of sessions.csv is a
ReaderError. Not in the spec (an extension, both optional): `allergies.csv` and `identifiers.csv`, items of
patients keyed by `patient_id`. Without them a patient read from CSV has no allergies or identifiers.

Columns are the field names; nested objects flatten with `_`: `address_line` `address_city` `address_state`
`address_postal_code` `address_country`, `consent_share_with_referrer` `consent_share_with_destinations`,
`indication_system` `indication_code` `indication_display`, `series_number` `series_session_number`
`series_planned_sessions`, `reason_system` `reason_code` `reason_display` (referrals), `dose_value`
`dose_unit`, `rate_value` `rate_unit`, `wasted_value` `wasted_unit`, `substance_text` `substance_system`
`substance_code`. Lists of strings (`given`, `address_line`, `consent_share_with_destinations`) are
`;`-separated (so an item cannot contain `;`). Answers are the columns `q1`..`qN`. An empty cell is an absent
field, and an object whose cells are all empty is absent. Values convert as in xml_reader (by the contract's
field types); an unknown column is kept as a string field so validation reports it.
"""

from __future__ import annotations

import csv
import io
import re

from integration.ingest.export_fields import SHAPES, ReaderError, typed
from integration.ingest.validation.engine import Field, Shape

# File -> its record kind, in the order records are returned.
RECORD_FILES = {
    "practitioners.csv": "practitioner",
    "patients.csv": "patient",
    "referrals.csv": "referral",
    "sessions.csv": "session",
    "assessments.csv": "assessment",
}
# File -> (parent file, link column, list field of the parent the rows go to).
ITEM_FILES = {
    "medications.csv": ("sessions.csv", "session_id", "medications"),
    "vitals.csv": ("sessions.csv", "session_id", "vitals"),
    "adverse_events.csv": ("sessions.csv", "session_id", "adverse_events"),
    "allergies.csv": ("patients.csv", "patient_id", "allergies"),
    "identifiers.csv": ("patients.csv", "patient_id", "identifiers"),
}
_ANSWER = re.compile(r"q\d+")
_Row = tuple[int, dict[str, str]]


def read_csv(files: dict[str, bytes]) -> list[tuple[str, dict]]:
    """The (kind, record) pairs of a CSV export (file name -> content); ReaderError for a malformed file."""
    unknown = sorted(set(files) - set(RECORD_FILES) - set(ITEM_FILES))
    if unknown:
        expected = ", ".join([*RECORD_FILES, *ITEM_FILES])
        raise ReaderError(unknown[0], f"not a file of the CSV export; expected {expected}")
    records: dict[str, list[tuple[int, dict]]] = {}
    for file, kind in RECORD_FILES.items():
        if file in files:
            rows = _rows(file, files[file], "id")
            records[file] = [(line, _record(file, line, row, SHAPES[kind])) for line, row in rows]
    standalone = _attach_assessments(files, records)
    for file, (parent_file, link, list_name) in ITEM_FILES.items():
        if file in files:
            _attach(file, files[file], records.get(parent_file, []), parent_file, link, list_name)
    out: list[tuple[str, dict]] = []
    for file, kind in RECORD_FILES.items():
        chosen = standalone if file == "assessments.csv" else records.get(file, [])
        out.extend((kind, record) for _, record in chosen)
    return out


def _attach_assessments(
    files: dict[str, bytes], records: dict[str, list[tuple[int, dict]]]
) -> list[tuple[int, dict]]:
    """Move the assessments that name a session into it; answer the standalone ones."""
    rows = records.get("assessments.csv", [])
    parents = _index(records.get("sessions.csv", []))
    standalone = []
    for line, record in rows:
        session_id = record.pop("session_id", None)
        if session_id is None:
            standalone.append((line, record))
            continue
        _check_parent(parents, session_id, "assessments.csv", line, "session_id", "sessions.csv")
        for parent in parents[session_id]:  # type: ignore[index]
            parent.setdefault("assessments", []).append(dict(record))
    return standalone


def _attach(
    file: str, data: bytes, parent_rows: list[tuple[int, dict]], parent_file: str, link: str, list_name: str
) -> None:
    parents = _index(parent_rows)
    item = _item_shape(parent_file, list_name)
    rows = _rows(file, data, link)
    for line, row in rows:
        parent_id = row.pop(link)
        if not parent_id:
            raise ReaderError(file, f"{link} is empty", line=line, column=link)
        _check_parent(parents, parent_id, file, line, link, parent_file)
        for parent in parents[parent_id]:
            parent.setdefault(list_name, []).append(_record(file, line, row, item))


def _check_parent(
    parents: dict[str, list[dict]], parent_id: object, file: str, line: int, link: str, parent_file: str
) -> None:
    if not isinstance(parent_id, str) or parent_id not in parents:
        message = f"{link} {parent_id!r} names no row of {parent_file}"
        raise ReaderError(file, message, line=line, column=link)


def _index(rows: list[tuple[int, dict]]) -> dict[str, list[dict]]:
    """Records by id; every copy of a repeated id gets the items (ingest then judges the copies)."""
    out: dict[str, list[dict]] = {}
    for _, record in rows:
        rid = record.get("id")
        if isinstance(rid, str):
            out.setdefault(rid, []).append(record)
    return out


def _item_shape(parent_file: str, list_name: str) -> Shape | None:
    field = SHAPES[RECORD_FILES[parent_file]].fields[list_name]
    return field.item.shape if field.item is not None else None


def _rows(file: str, data: bytes, key: str) -> list[_Row]:
    """(line, header -> cell) of every data row; the line is where the row ends, as csv counts it.

    The header must name the file's key column before anything else is said about it: a file
    without a header would otherwise have its first record's cells (names, birth dates) quoted
    back as column names in errors and import reports.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReaderError(file, f"not UTF-8 (byte {exc.start})", line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return []
        if key not in header:
            raise ReaderError(file, f"the first row is not a header: it has no {key} column", line=1)
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise ReaderError(file, "the header repeats a column", line=1, column=duplicates[0])
        if "" in header:
            raise ReaderError(file, "the header has an empty column name", line=1)
        out: list[_Row] = []
        for cells in reader:
            if not cells:
                continue  # a blank line
            if len(cells) != len(header):
                message = f"the row has {len(cells)} cells, the header {len(header)}"
                raise ReaderError(file, message, line=reader.line_num)
            out.append((reader.line_num, dict(zip(header, cells, strict=True))))
        return out
    except csv.Error as exc:
        raise ReaderError(file, f"not valid CSV: {exc}", line=reader.line_num) from None


def _record(file: str, line: int, row: dict[str, str], shape: Shape | None) -> dict:
    """One record from its row: each non-empty cell put at its (flattened) field path, typed."""
    out: dict = {}
    for column, cell in row.items():
        if cell == "":
            continue
        path, field = _resolve(shape, column)
        target = out
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):  # `answers` given as a column and as q-columns
                raise ReaderError(file, f"{column} clashes with the column {part}", line=line, column=column)
        if path[-1] in target:
            raise ReaderError(file, f"{column} clashes with another column", line=line, column=column)
        target[path[-1]] = _cell(field, cell)
    return out


def _cell(field: Field | None, cell: str) -> object:
    if field is not None and field.type == "list":
        return [typed(field.item, part) for part in cell.split(";")]
    return typed(field, cell)  # an object or map in one cell stays a string: validation reports its type


_ANSWER_FIELD = Field("", "integer")


def _resolve(shape: Shape | None, column: str) -> tuple[tuple[str, ...], Field | None]:
    """The field path a column names, and its field (None when unknown: kept as a string)."""
    if shape is None:
        return (column,), None
    field = shape.fields.get(column)
    if field is not None and field.type != "object":
        return (column,), field
    answers = shape.fields.get("answers")
    if answers is not None and answers.type == "map" and _ANSWER.fullmatch(column):
        return ("answers", column), _ANSWER_FIELD
    for name, candidate in shape.fields.items():
        if candidate.type == "object" and column.startswith(name + "_"):
            rest, inner = _resolve(candidate.shape, column[len(name) + 1 :])
            return (name, *rest), inner
    return (column,), None

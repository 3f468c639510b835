"""CSV and XML readers give back the very records the JSON API takes, and refuse unsafe or malformed files."""

from __future__ import annotations

import csv
import io
import json

import pytest
from lxml import etree

from integration.ingest import synthetic
from integration.ingest.csv_reader import read_csv
from integration.ingest.export_fields import ReaderError, number
from integration.ingest.service import COLLECTIONS
from integration.ingest.validation import validate_record
from integration.ingest.xml_reader import read_xml

# The element each list item is written as (the reader's documented names, stated independently here).
ITEMS = {"identifiers": "identifier", "allergies": "allergy", "medications": "medication"}
ITEMS |= {"share_with_destinations": "share_with_destination", "assessments": "assessment"}
ITEMS["adverse_events"] = "adverse_event"
# List of objects -> (CSV file, link column); a session's assessments go to assessments.csv.
ITEM_FILES = {
    k: (f"{k}.csv", "patient_id" if k in ("allergies", "identifiers") else "session_id")
    for k in ("medications", "vitals", "adverse_events", "assessments", "allergies", "identifiers")
}
FILES = {k: f"{k}s.csv" for k in ("practitioner", "patient", "referral", "session", "assessment")}


def _pairs(batch: dict) -> list[tuple[str, dict]]:
    return [(kind, r) for collection, kind in COLLECTIONS.items() for r in batch.get(collection, [])]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- XML writer -------------------------------------------------------------------------------------------
def _xml_field(parent, name: str, value) -> None:
    if isinstance(value, list):
        for item in value:
            _xml_field(parent, ITEMS.get(name, name), item)
        return
    el = etree.SubElement(parent, name)
    if isinstance(value, dict):
        for key, inner in value.items():
            _xml_field(el, key, inner)
    else:
        el.text = _text(value)


def to_xml(pairs: list[tuple[str, dict]], *, root: str = "clinicExport", version: str = "1") -> bytes:
    doc = etree.Element(root, version=version)
    for kind, record in pairs:
        _xml_field(doc, kind, record)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- CSV writer -------------------------------------------------------------------------------------------
def _flatten(record: dict, prefix: str, row: dict, children: list) -> None:
    for key, value in record.items():
        if key == "answers":
            row.update({q: _text(v) for q, v in value.items()})
        elif isinstance(value, dict):
            _flatten(value, f"{prefix}{key}_", row, children)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            children.append((key, value))
        elif isinstance(value, list):
            row[prefix + key] = ";".join(value)
        else:
            row[prefix + key] = _text(value)


def _add_row(tables: dict, file: str, record: dict, link: tuple[str, str] | None = None) -> None:
    row: dict = {link[0]: link[1]} if link else {}
    children: list = []
    _flatten(record, "", row, children)
    tables.setdefault(file, []).append(row)
    for key, items in children:
        child_file, column = ITEM_FILES[key]
        for item in items:
            _add_row(tables, child_file, item, (column, record["id"]))


def to_csv(pairs: list[tuple[str, dict]], *, bom: bool = False) -> dict[str, bytes]:
    tables: dict[str, list[dict]] = {}
    for kind, record in pairs:
        _add_row(tables, FILES[kind], record)
    out = {}
    for file, rows in tables.items():
        columns = list(dict.fromkeys(c for row in rows for c in row))
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        out[file] = ("\ufeff" if bom else "").encode() + buf.getvalue().encode()
    return out


# --- Round trips ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, dict]]:
    found = _pairs(synthetic.batch(seed=5, n_patients=12, sessions_per_patient=3))
    sessions = [r for k, r in found if k == "session"]
    patients = [r for k, r in found if k == "patient"]
    # The batch exercises every nested shape the readers convert.
    assert any("adverse_events" in s for s in sessions)
    assert any("wasted" in m for s in sessions for m in s.get("medications", []))
    assert any("patient_id" in a for s in sessions for a in s.get("assessments", []))
    assert any("allergies" in p for p in patients) and any("no_known_allergies" in p for p in patients)
    assert any("share_with_destinations" in p["consent"] for p in patients)
    assert any(len(p["given"]) > 1 for p in patients)
    assert {k for k, _ in found} == set(FILES)
    # Text that needs quoting or escaping in both forms survives as is.
    sessions[0]["note"] = 'Line one, "two"; <b> & ]]> \u00e9\u4e2d\nline two\r\nend '
    return found


def _by_kind(pairs: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for kind, record in pairs:
        out.setdefault(kind, []).append(record)
    return out


def _canon(records: dict[str, list[dict]]) -> str:
    """Equal values of another type (1 and 1.0, True and 1) would pass ==; compare the JSON too."""
    return json.dumps(records, sort_keys=True)


@pytest.mark.parametrize("form", ["xml", "csv", "csv-with-bom"])
def test_round_trip_gives_the_original_records(pairs, form):
    if form == "xml":
        read = read_xml(to_xml(pairs))
        assert read == pairs  # XML keeps the order of the records too
    else:
        files = to_csv(pairs, bom=form == "csv-with-bom")
        assert {"medications.csv", "vitals.csv", "adverse_events.csv", "allergies.csv"} <= set(files)
        read = read_csv(files)
    assert _canon(_by_kind(read)) == _canon(_by_kind(pairs))


def test_csv_empty_cells_are_absent_and_values_are_typed():
    files = {
        "sessions.csv": b"id,patient_id,weight_kg,series_number,indication_code,indication_display\r\n"
        b"S1,P1,70,2,F33.2,\r\n",
        "vitals.csv": b"session_id,taken_at,systolic,temp_c,spo2\r\nS1,2026-01-05T09:00:00-08:00,120,,97\r\n",
    }
    [(kind, session)] = read_csv(files)
    assert kind == "session"
    assert session == {
        "id": "S1",
        "patient_id": "P1",
        "weight_kg": 70,
        "series": {"number": 2},
        "indication": {"code": "F33.2"},
        "vitals": [{"taken_at": "2026-01-05T09:00:00-08:00", "systolic": 120, "spo2": 97}],
    }


def test_csv_keeps_unknown_columns_and_bad_numbers_for_validation():
    files = {"practitioners.csv": b"id,given,family,role,shoe_size\r\nX1,A;B,C,nurse,42\r\n"}
    [(_, record)] = read_csv(files)
    assert record["given"] == ["A", "B"] and record["shoe_size"] == "42"
    assert [e.rule for e in validate_record("practitioner", record)] == ["unknown-field"]


def test_xml_keeps_unknown_elements_and_unconvertible_text_for_validation():
    data = (
        b'<clinicExport version="1"><practitioner><id>X1</id><given>A</given><family>C</family>'
        b"<role>nurse</role><shoe_size>42</shoe_size></practitioner>"
        b"<session><id>S1</id><weight_kg>heavy</weight_kg></session></clinicExport>"
    )
    [(_, practitioner), (_, session)] = read_xml(data)
    assert practitioner["shoe_size"] == "42"
    assert session["weight_kg"] == "heavy"
    assert [e.rule for e in validate_record("practitioner", practitioner)] == ["unknown-field"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("4", 4), (" 4 ", 4), ("0.5", 0.5), ("-2", -2), ("1e3", 1000.0), ("1e999", "1e999"), ("nan", "nan")],
)
def test_numbers_keep_their_literal_form_and_odd_text_stays_text(text, value):
    assert repr(number(text)) == repr(value)


def test_a_number_beyond_pythons_conversion_limit_stays_text():
    assert number("9" * 5000) == "9" * 5000


# --- Files refused ----------------------------------------------------------------------------------------
_LAYERS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' if i else '<!ENTITY lol0 "lol">' for i in range(10)
)
BILLION_LAUGHS = (
    f'<?xml version="1.0"?>\n<!DOCTYPE lolz [{_LAYERS}]>\n'
    '<clinicExport version="1"><practitioner><id>&lol9;</id></practitioner></clinicExport>'
).encode()
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clinicExport [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<clinicExport version="1"><patient><id>&xxe;</id></patient></clinicExport>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE clinicExport [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<clinicExport version="1"/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE clinicExport SYSTEM "http://127.0.0.1:9/clinic.dtd">
<clinicExport version="1"/>"""
PLAIN_DOCTYPE = b'<!DOCTYPE clinicExport>\n<clinicExport version="1"/>'


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (BILLION_LAUGHS, "declares entities"),
        (EXTERNAL_ENTITY, "declares entities"),
        (PARAMETER_ENTITY, "entit"),
        (EXTERNAL_DTD, "DOCTYPE"),
        (PLAIN_DOCTYPE, "DOCTYPE"),
    ],
    ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd", "doctype"],
)
def test_xml_with_a_dtd_or_entities_is_rejected(data, problem):
    with pytest.raises(ReaderError, match=problem) as caught:
        read_xml(data, name="evil.xml")
    assert caught.value.file == "evil.xml"
    assert "lol" not in str(caught.value) and "root:" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'<clinicExports version="1"/>', "root element is <clinicExports>"),
        (b'<clinicExport version="2"/>', "version is '2'"),
        (b"<clinicExport/>", "no version"),
        (b'<clinicExport version="1"><doctor/></clinicExport>', "unexpected element <doctor>"),
        (
            b'<clinicExport version="1">\n<patient><id>1</id><id>2</id></patient></clinicExport>',
            "more than once",
        ),
        (b'<clinicExport version="1">\n<patient><id>1</patient></clinicExport>', "not well-formed"),
        (b'<clinicExport version="1"><patient><id>&nbsp;</id></patient></clinicExport>', "not well-formed"),
    ],
)
def test_malformed_xml_is_rejected_with_its_place(data, problem):
    with pytest.raises(ReaderError, match=problem):
        read_xml(data)


def test_xml_error_names_the_line():
    with pytest.raises(ReaderError) as caught:
        read_xml(b'<clinicExport version="1">\n<patient>\n<id>1</id>\n<id>2</id></patient></clinicExport>')
    assert caught.value.line == 4


def test_csv_item_row_for_an_unknown_session_names_file_line_and_column():
    files = {
        "sessions.csv": b"id,patient_id\r\nS1,P1\r\n",
        "medications.csv": b"session_id,id,drug\r\nS1,m1,ketamine\r\nS9,m2,ketamine\r\n",
    }
    with pytest.raises(ReaderError) as caught:
        read_csv(files)
    err = caught.value
    assert (err.file, err.line, err.column) == ("medications.csv", 3, "session_id")
    assert "'S9'" in str(err)


def test_csv_assessment_for_an_unknown_session_is_rejected():
    files = {"assessments.csv": b"id,session_id,instrument\r\na1,S1,phq9\r\n"}
    with pytest.raises(ReaderError, match=r"names no row of sessions\.csv"):
        read_csv(files)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"patients.csv": b"id,family\r\nP1,A,extra\r\n"}, "3 cells, the header 2"),
        ({"patients.csv": b"id,id\r\nP1,P2\r\n"}, "repeats a column"),
        ({"patients.csv": b"id,family\r\n\xff,A\r\n"}, "not UTF-8"),
        ({"patients.csv": b'id,family\r\n"P1,A\r\n'}, "not valid CSV"),
        ({"vitals.csv": b"taken_at\r\n2026-01-05T09:00:00-08:00\r\n"}, "no session_id column"),
        ({"doctors.csv": b"id\r\n"}, "not a file of the CSV export"),
        ({"patients.csv": b"id,address,address_city\r\nP1,x,Seattle\r\n"}, "clashes"),
    ],
)
def test_malformed_csv_is_rejected(files, problem):
    with pytest.raises(ReaderError, match=problem):
        read_csv(files)


# --- The import command -----------------------------------------------------------------------------------
def _import(app, path):
    return app.test_cli_runner().invoke(args=["import", str(path)])


def _write_csv(folder, files: dict[str, bytes]) -> None:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)


def test_import_command_over_xml_and_csv(app, tmp_path):
    pairs = _pairs(synthetic.batch(seed=8, n_patients=3, sessions_per_patient=2))
    n = len(pairs)
    xml_file = tmp_path / "export.xml"
    xml_file.write_bytes(to_xml(pairs))
    result = _import(app, xml_file)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"accepted={n} unchanged=0 rejected=0"]

    folder = tmp_path / "csv"
    _write_csv(folder, to_csv(pairs))
    result = _import(app, folder)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"accepted=0 unchanged={n} rejected=0"]


def test_import_command_reports_a_bad_record_by_its_rule_not_its_contents(app, tmp_path):
    pairs = _pairs(synthetic.batch(seed=9, n_patients=2, sessions_per_patient=1))
    sessions = [r for k, r in pairs if k == "session"]
    bad = dict(sessions[0], weight_kg=999, note="PRIVATE NOTE")
    pairs = [(k, bad if r is sessions[0] else r) for k, r in pairs]
    folder = tmp_path / "csv"
    _write_csv(folder, to_csv(pairs))
    result = _import(app, folder)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"accepted={len(pairs) - 1} unchanged=0 rejected=1"
    assert lines[1:] == [f"rejected session {bad['id']} weight_kg range"]
    assert "PRIVATE" not in result.output and "999" not in result.output


def test_import_command_refuses_a_malformed_file_and_stores_nothing(app, tmp_path):
    evil = tmp_path / "evil.xml"
    evil.write_bytes(EXTERNAL_ENTITY)
    result = _import(app, evil)
    assert result.exit_code != 0
    assert "evil.xml" in result.output and "entities" in result.output
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    assert "neither an .xml file" in _import(app, other).output


def test_a_csv_without_header_is_refused_without_quoting_its_cells():
    headerless = b"MRN100,Sam,Lee,1980-04-02,Lee\r\nMRN101,Ana,Diaz,1975-01-09,Diaz\r\n"
    with pytest.raises(ReaderError) as caught:
        read_csv({"patients.csv": headerless})
    assert "not a header" in str(caught.value)
    assert not any(cell in str(caught.value) for cell in ("MRN100", "Sam", "Lee", "1980"))

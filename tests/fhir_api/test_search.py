"""FHIR search over the index: parameters, prefixes, paging, sorting, includes, strictness, errors."""

from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select

from integration.store.schema import audit_event
from tests.fhir_api.search_support import ids, link, relative, store, stored, token, walk


@pytest.fixture
def data(client, clinic_headers):
    return store(client, clinic_headers)


@pytest.fixture
def headers(client, db, data):
    return token(client, db)


def _get(client, headers, path, status=200):
    response = client.get(path, headers=headers)
    assert response.status_code == status, response.json
    return response.json


def _all(client, headers, path):
    sep = "&" if "?" in path else "?"
    return set(walk(client, headers, f"{path}{sep}_count=1000"))


def test_patient_parameters(client, db, headers):
    patients = stored(db, "Patient")
    p = patients[0]
    pid, name, ident = p["id"], p["name"][0], p["identifier"][0]
    assert _all(client, headers, f"/fhir/Patient?_id={pid}") == {pid}
    assert _all(client, headers, f"/fhir/Patient?identifier={ident['system']}|{ident['value']}") == {pid}
    assert _all(client, headers, f"/fhir/Patient?identifier={ident['value']}") == {pid}
    assert _all(client, headers, f"/fhir/Patient?identifier=|{ident['value']}") == set()  # it has a system
    assert pid in _all(client, headers, f"/fhir/Patient?identifier={ident['system']}|")
    assert _all(client, headers, f"/fhir/Patient?family={name['family'][:3].lower()}") >= {pid}
    assert _all(client, headers, f"/fhir/Patient?family:exact={name['family'].lower()}") == set()
    assert _all(client, headers, f"/fhir/Patient?family:exact={name['family']}") == {pid}
    assert _all(client, headers, f"/fhir/Patient?family:contains={name['family'][2:5].upper()}") >= {pid}
    assert pid in _all(client, headers, f"/fhir/Patient?given={name['given'][0]}")
    assert pid in _all(client, headers, f"/fhir/Patient?name={name['given'][0].upper()}")
    assert pid in _all(client, headers, f"/fhir/Patient?gender={p['gender']}")
    assert pid not in _all(
        client, headers, "/fhir/Patient?gender=" + ("male" if p["gender"] != "male" else "female")
    )
    born = p["birthDate"]
    assert pid in _all(client, headers, f"/fhir/Patient?birthdate={born}")
    assert pid in _all(client, headers, f"/fhir/Patient?birthdate={born[:4]}")
    assert pid in _all(client, headers, f"/fhir/Patient?birthdate=ge{born}&birthdate=le{born}")
    assert pid not in _all(client, headers, f"/fhir/Patient?birthdate=gt{born}")
    assert pid not in _all(client, headers, f"/fhir/Patient?birthdate=lt{born}")
    assert pid not in _all(client, headers, f"/fhir/Patient?birthdate=ne{born}")
    assert _all(client, headers, f"/fhir/Patient?_id={pid},{patients[1]['id']}") == {pid, patients[1]["id"]}


def test_observation_parameters(client, db, headers):
    observations = stored(db, "Observation")
    o = next(
        x
        for x in observations
        if "effectiveDateTime" in x and x["category"][0]["coding"][0]["code"] == "vital-signs"
    )
    pid = o["subject"]["reference"].split("/")[1]
    mine = {x["id"] for x in observations if x["subject"]["reference"] == f"Patient/{pid}"}
    assert _all(client, headers, f"/fhir/Observation?patient={pid}") == mine
    assert _all(client, headers, f"/fhir/Observation?patient=Patient/{pid}") == mine
    assert _all(client, headers, f"/fhir/Observation?subject=Patient/{pid}") == mine
    assert _all(client, headers, f"/fhir/Observation?subject:Patient={pid}") == mine
    coding = o["code"]["coding"][0]
    same_code = {x["id"] for x in observations if x["id"] in mine and coding in x["code"]["coding"]}
    q = f"/fhir/Observation?patient={pid}&code={coding['system']}|{coding['code']}"
    assert _all(client, headers, q) == same_code
    assert _all(client, headers, f"/fhir/Observation?patient={pid}&code={coding['code']}") == same_code
    assert _all(client, headers, f"/fhir/Observation?patient={pid}&code=|{coding['code']}") == set()
    assert _all(client, headers, f"/fhir/Observation?patient={pid}&category=vital-signs") >= same_code
    other = next(x for x in observations if x["code"]["coding"][0] != coding)["code"]["coding"][0]
    either = _all(client, headers, f"/fhir/Observation?patient={pid}&code={coding['code']},{other['code']}")
    assert either > same_code
    when = o["effectiveDateTime"]
    exact = _all(client, headers, f"/fhir/Observation?patient={pid}&date={when.replace('+', '%2B')}")
    assert o["id"] in exact
    day = when[:10]
    assert o["id"] in _all(client, headers, f"/fhir/Observation?patient={pid}&date=ge{day}&date=lt2100")
    assert o["id"] not in _all(client, headers, f"/fhir/Observation?patient={pid}&date=lt1990-01-01")
    assert o["id"] in _all(client, headers, f"/fhir/Observation?patient={pid}&date=gt1990-01-01")
    assert o["id"] in _all(client, headers, f"/fhir/Observation?patient={pid}&_lastUpdated=ge2000-01-01")
    assert _all(client, headers, f"/fhir/Observation?patient={pid}&_lastUpdated=lt2000-01-01") == set()


def test_paging_is_keyset_and_stable_while_data_arrives(client, db, clinic_headers, headers):
    expected = {x["id"] for x in stored(db, "Observation")}
    first = _get(client, headers, "/fhir/Observation?_count=40")
    seen = ids(first)
    assert "total" not in first and len(seen) == 40
    path = relative(link(first, "next"))
    # New patients and sessions written between pages.
    store(client, clinic_headers, seed=77, patients=2, sessions=1, mrn_prefix="MRN9")
    while path:
        page = _get(client, headers, path)
        seen += ids(page)
        nxt = link(page, "next")
        path = relative(nxt) if nxt else None
    assert len(seen) == len(set(seen)) and expected <= set(seen)
    self_link = urlsplit(link(first, "self"))
    assert dict(parse_qsl(self_link.query)) == {"_count": "40"}


@pytest.mark.parametrize("sort", ["_lastUpdated", "-_lastUpdated", "-_id", "date", "-date"])
def test_sort_keys_page_without_gaps(client, db, headers, sort):
    pid = stored(db, "Patient")[0]["id"]
    everything = _all(client, headers, f"/fhir/Observation?patient={pid}")
    paged = walk(client, headers, f"/fhir/Observation?patient={pid}&_sort={sort}&_count=7")
    assert len(paged) == len(set(paged)) and set(paged) == everything
    if sort == "-_id":
        assert paged == sorted(paged, reverse=True)
    if sort.endswith("date"):
        by_id = {o["id"]: o for o in stored(db, "Observation")}
        dates = [by_id[i].get("effectiveDateTime") or by_id[i]["effectivePeriod"]["start"] for i in paged]
        from integration.store.search_extract import date_range

        lows = [date_range(d)[0] for d in dates]
        assert lows == sorted(lows, reverse=sort.startswith("-"))


def test_summary_count_total_and_post(client, db, headers):
    pid = stored(db, "Patient")[0]["id"]
    everything = _all(client, headers, f"/fhir/Observation?patient={pid}")
    counted = _get(client, headers, f"/fhir/Observation?patient={pid}&_summary=count")
    assert counted["total"] == len(everything) and "entry" not in counted
    assert _get(client, headers, f"/fhir/Observation?patient={pid}&_count=0")["total"] == len(everything)
    accurate = _get(client, headers, f"/fhir/Observation?patient={pid}&_count=2&_total=accurate")
    assert accurate["total"] == len(everything) and len(accurate["entry"]) == 2
    posted = client.post(
        "/fhir/Observation/_search",
        data={"patient": pid, "_count": "1000"},
        headers=headers,
        content_type="application/x-www-form-urlencoded",
    )
    assert posted.status_code == 200 and set(ids(posted.json)) == everything
    wrong = client.post("/fhir/Observation/_search", json={"patient": pid}, headers=headers)
    assert wrong.status_code == 415 and wrong.json["resourceType"] == "OperationOutcome"


def test_unknown_parameters_are_dropped_unless_strict(client, db, headers):
    lenient = _get(client, headers, "/fhir/Patient?foo=bar&gender=male&_include=Patient:nope")
    assert dict(parse_qsl(urlsplit(link(lenient, "self")).query)) == {"gender": "male"}
    strict = client.get("/fhir/Patient?foo=bar", headers={**headers, "Prefer": "handling=strict"})
    assert strict.status_code == 400 and "foo" in strict.json["issue"][0]["diagnostics"]
    assert (
        client.get("/fhir/Patient?gender=male", headers={**headers, "Prefer": "handling=strict"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "query",
    [
        "Observation?date=2026-13-01",
        "Observation?date=xx2026",
        "Observation?date=ap2026",
        "Observation?_count=-1",
        "Observation?_count=ten",
        "Observation?_sort=status",
        "Observation?_summary=true",
        "Observation?code:text=x",
        "Observation?code=|",
        "Observation?patient=",
        "Observation?patient=Group/1",
        "Observation?_cursor=notacursor",
        "Observation?_cursor=WyJhIiwiYiIsImMiXQ",
        "Observation?_lastUpdated=yesterday",
    ],
)
def test_invalid_values_are_400_outcomes(client, headers, query):
    response = client.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 400 and response.json["resourceType"] == "OperationOutcome"


def test_include_and_revinclude(client, db, headers):
    observation = stored(db, "Observation")[0]
    pid = observation["subject"]["reference"].split("/")[1]
    bundle = _get(client, headers, f"/fhir/Observation?_id={observation['id']}&_include=Observation:patient")
    assert ids(bundle) == [observation["id"]] and ids(bundle, "include") == [pid]
    assert bundle["entry"][1]["fullUrl"].endswith(f"/fhir/Patient/{pid}")
    med = stored(db, "MedicationAdministration")[0]
    encounter = med["context"]["reference"].split("/")[1]
    bundle = _get(
        client,
        headers,
        f"/fhir/MedicationAdministration?_id={med['id']}&_include=MedicationAdministration:encounter",
    )
    assert ids(bundle, "include") == [encounter]
    bundle = _get(
        client,
        headers,
        f"/fhir/Encounter?_id={encounter}&_revinclude=Provenance:target&_include=Encounter:patient",
    )
    included = {e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert included == {"Provenance", "Patient"}
    revs = _get(client, headers, f"/fhir/Patient?_id={pid}&_revinclude=Observation:patient")
    assert set(ids(revs, "include")) == {
        o["id"] for o in stored(db, "Observation") if o["subject"]["reference"] == f"Patient/{pid}"
    }


def test_searches_are_audited_with_their_patient(client, db, headers):
    pid = stored(db, "Patient")[0]["id"]
    _get(client, headers, f"/fhir/Observation?patient={pid}&_count=3")
    with db.reader() as conn:
        row = conn.execute(select(audit_event).where(audit_event.c.action == "fhir.search")).mappings().one()
    assert row["patient_id"] == pid and row["entity"] == "Observation" and row["outcome"] == 200
    assert pid not in (row["detail"] or "").split('"parameters"')[1].split("]")[0]  # names, not values


def test_searchset_as_xml(client, db, headers):
    from fhir.resources.R4B.bundle import Bundle

    pid = stored(db, "Patient")[0]["id"]
    response = client.get(f"/fhir/Patient?_id={pid}&_format=xml", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/fhir+xml"
    assert Bundle.model_validate_xml(response.data).entry[0].resource.id == pid

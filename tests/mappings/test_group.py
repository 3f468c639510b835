"""The referrer Group mapping: deterministic id, sorted unique members, valid R4, empty when moved."""

import uuid

from mappings import ids
from mappings.group import referrer_group_dict, referrer_group_id, to_fhir_referrer_group
from tests.mappings.conformance import schema_errors


def test_group_is_deterministic_valid_and_names_the_referrer(ctx, schema_available):
    a = referrer_group_dict("ref-1", ["mrn-2", "mrn-1", "mrn-2"], ctx)
    b = referrer_group_dict("ref-1", ["mrn-1", "mrn-2"], ctx)
    assert a == b
    assert a["id"] == str(uuid.uuid5(ids.namespace("referrer-group"), "ref-1")) == referrer_group_id("ref-1")
    assert (a["type"], a["actual"], a["quantity"]) == ("person", True, 2)
    assert a["identifier"] == [{"system": f"{ctx.base_url}/sid/referrer-group", "value": "ref-1"}]
    assert a["managingEntity"] == ids.reference("practitioner", "ref-1")
    refs = [m["entity"]["reference"] for m in a["member"]]
    assert refs == sorted(refs) and set(refs) == {
        f"Patient/{ids.resource_id('patient', p)}" for p in ("mrn-1", "mrn-2")
    }
    assert type(to_fhir_referrer_group("ref-1", ["mrn-1"], ctx)).__name__ == "Group"
    assert schema_errors(a) == []


def test_a_group_without_referrals_has_no_members(ctx):
    empty = referrer_group_dict("ref-9", [], ctx)
    assert empty["quantity"] == 0 and "member" not in empty
    to_fhir_referrer_group("ref-9", [], ctx)

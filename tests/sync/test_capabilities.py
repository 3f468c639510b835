"""Capability negotiation: facts learned, the mode chosen, and discovery from a real server."""

from integration.settings import Settings
from integration.sync.capabilities import choose, discover, learn
from integration.sync.client import FhirClient
from tests.sync.conftest import make_destination
from tests.sync.receiver import Receiver


def _cs(interactions, conditional):
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": c} for c in interactions],
                "resource": [{"type": t, "conditionalUpdate": True} for t in conditional],
            }
        ],
    }


def test_learn_and_choose():
    facts = learn(_cs(["batch"], ["Patient", "Observation"]), {"token_endpoint": "https://t"})
    assert facts["transaction"] is False and facts["batch"] is True
    assert facts["conditional_update"] == ["Observation", "Patient"]
    assert facts["smart"]["token_endpoint"] == "https://t"
    auto = make_destination(
        "http://127.0.0.1:1/fhir", write_mode="auto", write_by="auto", resource_types=["Patient"]
    )
    assert choose(auto, facts) == ("batch", True)
    assert choose(auto, learn(_cs(["transaction", "batch"], []), None)) == ("transaction", False)
    assert choose(auto, learn({"resourceType": "Other"}, None)) == ("individual", False)
    assert choose(auto, None) == ("individual", False)
    fixed = make_destination("http://127.0.0.1:1/fhir", write_mode="batch", write_by="identifier")
    assert choose(fixed, {"transaction": True}) == ("batch", True)


def test_discover_reads_metadata_and_smart_configuration_from_the_server():
    settings = Settings.load(environ={})
    server = Receiver(transaction=False, batch=True, conditional=True).start()
    try:
        destination = make_destination(server.url, write_mode="auto")
        facts = discover(FhirClient(destination, settings))
    finally:
        server.stop()
    assert facts["batch"] and not facts["transaction"] and "Patient" in facts["conditional_update"]
    assert facts["smart"]["token_endpoint"] == server.token_url and facts["problems"] == []
    assert [r[1] for r in server.requests] == ["/fhir/metadata", "/fhir/.well-known/smart-configuration"]


def test_discover_records_an_unreachable_server():
    settings = Settings.load(environ={})
    destination = make_destination("http://127.0.0.1:9/fhir", write_mode="auto")
    facts = discover(FhirClient(destination, settings))
    assert len(facts["problems"]) == 2 and facts["transaction"] is False

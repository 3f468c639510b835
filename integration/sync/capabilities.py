"""Capability negotiation: what a destination's server can do, from its CapabilityStatement and SMART config.

`learn` (pure) reduces the two documents to the facts delivery needs; `choose` (pure) picks the write
mode and whether to update by our identifier; `discover` fetches the documents through the
destination's own client (its origin only).
"""

from __future__ import annotations

from typing import Any

from integration.sync.auth import AuthError
from integration.sync.client import FhirClient, TransportError
from integration.sync.destinations import Destination


def learn(capability: object, smart: object) -> dict[str, Any]:
    """The facts delivery uses, from a CapabilityStatement (dict) and a SMART configuration (dict or None)."""
    facts: dict[str, Any] = {
        "transaction": False,
        "batch": False,
        "conditional_update": [],
        "fhir_version": None,
        "software": None,
        "smart": None,
        "search": {},  # resource type -> search parameters declared (for pulls: `_lastUpdated`?)
        "history_type": [],  # types declaring the history-type interaction (`_since`)
    }
    if isinstance(capability, dict) and capability.get("resourceType") == "CapabilityStatement":
        facts["fhir_version"] = capability.get("fhirVersion")
        software = capability.get("software")
        facts["software"] = software.get("name") if isinstance(software, dict) else None
        for rest in capability.get("rest") or []:
            if not isinstance(rest, dict) or rest.get("mode") != "server":
                continue
            codes = {i.get("code") for i in rest.get("interaction") or [] if isinstance(i, dict)}
            facts["transaction"] = facts["transaction"] or "transaction" in codes
            facts["batch"] = facts["batch"] or "batch" in codes
            facts["conditional_update"] = sorted(
                r.get("type")
                for r in rest.get("resource") or []
                if isinstance(r, dict)
                and r.get("conditionalUpdate") is True
                and isinstance(r.get("type"), str)
            )
            _learn_search(rest, facts)
    if isinstance(smart, dict):
        facts["smart"] = {
            "token_endpoint": smart.get("token_endpoint"),
            "signing_algs": smart.get("token_endpoint_auth_signing_alg_values_supported") or [],
            "grant_types": smart.get("grant_types_supported") or [],
        }
    return facts


def _names(items: object) -> set[str]:
    return {i["name"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("name"), str)}  # type: ignore[attr-defined]


def _learn_search(rest: dict[str, Any], facts: dict[str, Any]) -> None:
    """Search parameters per resource type (those declared for all types at rest level included)."""
    common = _names(rest.get("searchParam"))
    for r in rest.get("resource") or []:
        if not isinstance(r, dict) or not isinstance(r.get("type"), str):
            continue
        codes = {i.get("code") for i in r.get("interaction") or [] if isinstance(i, dict)}
        if "search-type" in codes or r.get("searchParam"):
            facts["search"][r["type"]] = sorted(common | _names(r.get("searchParam")))
        if "history-type" in codes:
            facts["history_type"].append(r["type"])
    facts["history_type"].sort()


def choose(destination: Destination, facts: dict[str, Any] | None) -> tuple[str, bool]:
    """(write mode, update by identifier) for a destination given what was learned about it."""
    facts = facts or {}
    mode = destination.write_mode
    if mode == "auto":
        mode = "transaction" if facts.get("transaction") else "batch" if facts.get("batch") else "individual"
    if destination.write_by == "identifier":
        conditional = True
    elif destination.write_by == "auto":
        wanted = set(destination.resource_types) or {"Patient"}
        conditional = bool(facts.get("conditional_update")) and wanted <= set(facts["conditional_update"])
    else:
        conditional = False
    return mode, conditional


def discover(client: FhirClient) -> dict[str, Any]:
    """Fetch and learn; an unreachable or unreadable document is recorded as a problem, not raised."""
    problems: list[str] = []
    documents: list[object] = []
    for path, accept in (
        ("metadata", "application/fhir+json"),
        (".well-known/smart-configuration", "application/json"),
    ):
        try:
            answer = client.request("GET", path, accept=accept)
        except (TransportError, AuthError) as exc:
            problems.append(f"{path}: no answer ({exc})")
            documents.append(None)
            continue
        if answer.status != 200:
            problems.append(f"{path}: HTTP {answer.status}")
            documents.append(None)
            continue
        documents.append(answer.json())
    facts = learn(documents[0], documents[1])
    token_endpoint = (facts.get("smart") or {}).get("token_endpoint")
    configured = client.destination.auth.token_url
    if configured and token_endpoint and token_endpoint != configured:
        problems.append("the server's SMART token_endpoint differs from the configured token_url")
    facts["problems"] = problems
    return facts


def needs_discovery(destination: Destination) -> bool:
    return destination.write_mode == "auto" or destination.write_by == "auto"

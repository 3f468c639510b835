"""The CapabilityStatement: exactly what this server implements today, nothing more."""

from __future__ import annotations

from typing import Any

from integration.fhir_api.operations import add_operations
from integration.fhir_api.search_query import DATE_PREFIXES, MODIFIERS, sort_keys
from integration.store.search_params import COMMON, params_for, reference_params_to
from mappings.ids import RESOURCE_TYPE

SERVED_TYPES = tuple(sorted(set(RESOURCE_TYPE.values()) | {"Group"}))  # Groups: one per referrer
INTERACTIONS = ("read", "vread", "history-instance", "history-type", "search-type")
SYSTEM_INTERACTIONS = ("history-system",)


def search_capabilities(resource_type: str) -> dict[str, Any]:
    """The search part of one type's entry, from the same table the index and the parser use."""
    defined = params_for(resource_type).values()
    params: list[dict[str, str]] = [
        {"name": name, "type": "token" if name == "_id" else kind} for name, kind in COMMON.items()
    ]
    params += [{"name": p.name, "type": p.type, "documentation": _modifiers(p.type)} for p in defined]
    entry: dict[str, Any] = {"searchParam": params}
    includes = [f"{resource_type}:{p.name}" for p in defined if p.type == "reference"]
    revincludes = sorted(f"{p.resource_type}:{p.name}" for p in reference_params_to(resource_type))
    if includes:
        entry["searchInclude"] = includes
    if revincludes:
        entry["searchRevInclude"] = revincludes
    entry["documentation"] = (
        f"_sort: {', '.join(sort_keys(resource_type))} (prefix - for descending); _count (max 1000), "
        "_summary=count, _total, paging by next links (sorted pages read the store as of the first page); "
        "Prefer: handling=strict rejects unknown parameters"
    )
    return entry


def _modifiers(param_type: str) -> str:
    """The modifiers the parser accepts for a parameter type (R4 CapabilityStatement has no element
    for them, so they are stated in the parameter's documentation)."""
    listed = [f":{m}" for m in MODIFIERS[param_type]]
    if param_type == "reference":
        listed.insert(0, ":[type]")
    text = f"modifiers {', '.join(listed)}"
    if param_type == "date":
        text += f"; prefixes {' '.join(DATE_PREFIXES)}"
    return text


def capability_statement(token_url: str, software_version: str, published: str) -> dict[str, Any]:
    return add_operations(_statement(token_url, software_version, published))


def _statement(token_url: str, software_version: str, published: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "kind": "instance",
        "software": {"name": "Horizon Integration", "version": software_version},
        "implementation": {"description": "Horizon Integration FHIR R4 server"},
        "fhirVersion": "4.0.1",
        "format": ["json", "xml"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                },
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": code} for code in INTERACTIONS],
                        "versioning": "versioned",
                        **search_capabilities(t),
                    }
                    for t in SERVED_TYPES
                ],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }

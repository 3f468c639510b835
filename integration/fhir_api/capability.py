"""The CapabilityStatement: exactly what this server implements today, nothing more."""

from __future__ import annotations

from typing import Any

from integration.fhir_api.operations import add_operations
from mappings.ids import RESOURCE_TYPE

SERVED_TYPES = tuple(sorted(set(RESOURCE_TYPE.values()) | {"Group"}))  # Groups: one per referrer
INTERACTIONS = ("read", "vread", "history-instance")


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
                    }
                    for t in SERVED_TYPES
                ],
            }
        ],
    }

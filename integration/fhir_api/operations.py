"""The operations this server implements, as CapabilityStatement entries with their official canonicals.

Bulk Data Access 2.0 (reference section 8.2): `export`, `patient-export`, `group-export`, and the
IG's CapabilityStatement the server instantiates; FHIR R4 core: `Patient-everything`.
"""

from __future__ import annotations

from typing import Any

BULK = "http://hl7.org/fhir/uv/bulkdata/"
BULK_CAPABILITY = BULK + "CapabilityStatement/bulk-data"
SYSTEM_OPERATIONS = [{"name": "export", "definition": BULK + "OperationDefinition/export"}]
TYPE_OPERATIONS: dict[str, list[dict[str, str]]] = {
    "Patient": [
        {"name": "export", "definition": BULK + "OperationDefinition/patient-export"},
        {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
    ],
    "Group": [{"name": "export", "definition": BULK + "OperationDefinition/group-export"}],
}


def add_operations(statement: dict[str, Any]) -> dict[str, Any]:
    """Declare `$export` (system, Patient, Group) and `Patient/$everything` in a CapabilityStatement."""
    statement["instantiates"] = [BULK_CAPABILITY]
    rest = statement["rest"][0]
    rest["operation"] = list(SYSTEM_OPERATIONS)
    for resource in rest["resource"]:
        operations = TYPE_OPERATIONS.get(resource["type"])
        if operations:
            resource["operation"] = list(operations)
    return statement

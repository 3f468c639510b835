"""What a referrer is sent, built once from one computed summary (pure: no I/O, no clock, no env).

Channel `fhir`: two conditional creates, in order (FHIR R4 http.html#ccreate, `If-None-Exist`), so a
retried send never makes a second copy:
  1. POST [base]/Bundle: the FHIR document Bundle (fhir_document.py);
  2. POST [base]/DocumentReference: status current, type LOINC 11488-4 (clinical-standards.md 7, V), the
     C-CDA (format urn:hl7-org:sdwg:ccda-structuredBody:2.1, 7, V) and the PDF as base64 attachments with
     size and SHA-1 hash (R4 Attachment), context.related naming the document Bundle by identifier.
Channel `webhook`: one POST of the document Bundle JSON, signed when sent (webhook_signing.py).

A version that replaces an earlier one says so everywhere: Composition.relatesTo (code replaces,
targetIdentifier the earlier Composition's identifier), DocumentReference.relatesTo (replaces, target by
identifier) and, in the C-CDA, relatedDocument RPLC (ccda.CdaVersion).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from integration.summaries.ccda import CdaVersion
from integration.summaries.fhir_document import CONSULT_NOTE
from integration.summaries.model import Summary
from integration.summaries.referrers import Referrer, url_problem
from integration.summaries.webhook_signing import signed_headers

FHIR_JSON = "application/fhir+json"
CCDA_FORMAT = {
    "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
    "code": "urn:hl7-org:sdwg:ccda-structuredBody:2.1",
}
_NAMESPACE = uuid.UUID("3d0f3c56-8a2e-4a47-9a3e-0b7c2f5e9d21")  # fixed: ids are stable across runs
DELIVERY_HEADER = "X-Horizon-Delivery"


class DeliveryConfigError(RuntimeError):
    """A prepared delivery cannot be sent with the configuration at hand (e.g. its secret is not set)."""


@dataclass(frozen=True, slots=True)
class DocumentSlot:
    """Where a document sits in its set: set id, version number, and the version it replaces (its number
    and Composition id; usually number - 1, but a version that was never delivered is not replaced)."""

    set_id: str
    number: int
    replaces_composition: str | None = None
    replaces_number: int | None = None

    def version_id(self, number: int | None = None) -> str:
        """The id of one version of the set (C-CDA id root, DocumentReference id): a uuid5."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.set_id}|{self.number if number is None else number}"))

    def cda(self) -> CdaVersion:
        if self.replaces_composition is None or self.replaces_number is None:
            return CdaVersion(self.version_id(), self.set_id, self.number)
        parent = self.version_id(self.replaces_number)
        return CdaVersion(self.version_id(), self.set_id, self.number, parent, self.replaces_number)


def set_id(patient_id: str, referrer: str, period_start: str | None) -> str:
    """The document set of one (patient, referrer, period start)."""
    return str(uuid.uuid5(_NAMESPACE, f"set|{patient_id}|{referrer}|{period_start or '-'}"))


def with_replaces(bundle: dict[str, Any], slot: DocumentSlot, base_url: str) -> dict[str, Any]:
    """The document Bundle, its Composition saying which earlier Composition it replaces (if any)."""
    if slot.replaces_composition is None:
        return bundle
    composition = dict(bundle["entry"][0]["resource"])
    composition["relatesTo"] = [
        {
            "code": "replaces",
            "targetIdentifier": {
                "system": f"{base_url}/sid/treatment-summary",
                "value": slot.replaces_composition,
            },
        }
    ]
    entries = [{**bundle["entry"][0], "resource": composition}, *bundle["entry"][1:]]
    return {**bundle, "entry": entries}


def attachment(data: bytes, content_type: str, title: str, creation: str) -> dict[str, Any]:
    """An R4 Attachment carrying `data` inline: base64, byte size and base64 SHA-1 hash."""
    return {
        "contentType": content_type,
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),  # noqa: S324 - R4 requires SHA-1
        "title": title,
        "creation": creation,
    }


def document_reference(
    summary: Summary, bundle: Mapping[str, Any], ccda: bytes, pdf: bytes, slot: DocumentSlot, base_url: str
) -> dict[str, Any]:
    """The DocumentReference carrying the C-CDA and the PDF of this version."""
    doc_id = slot.version_id()
    created = summary.generated_at.isoformat()
    authors = [{"reference": summary.attending.reference}] if summary.attending else []
    authors.append({"reference": summary.clinic.organization_reference, "display": summary.clinic.name})
    out: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{doc_id}"},
        "identifier": [_docref_identifier(base_url, doc_id)],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [CONSULT_NOTE]},
        "subject": {"reference": summary.patient.reference, "display": summary.patient.name},
        "date": created,
        "author": authors,
        "custodian": {"reference": summary.clinic.organization_reference, "display": summary.clinic.name},
        "description": bundle["entry"][0]["resource"]["title"],
        "content": [
            {
                "attachment": attachment(ccda, "application/xml", "Treatment summary (C-CDA)", created),
                "format": CCDA_FORMAT,
            },
            {"attachment": attachment(pdf, "application/pdf", "Treatment summary (PDF)", created)},
        ],
        "context": {"related": [{"identifier": bundle["identifier"]}]},
    }
    if slot.replaces_composition is not None and slot.replaces_number is not None:
        previous = slot.version_id(slot.replaces_number)
        out["relatesTo"] = [
            {"code": "replaces", "target": {"identifier": _docref_identifier(base_url, previous)}}
        ]
    if summary.sessions:
        out["context"]["encounter"] = [{"reference": summary.sessions[-1].encounter}]
    if summary.period.start or summary.period.end:
        period = {}
        if summary.period.start:
            period["start"] = summary.period.start.isoformat()
        if summary.period.end:
            period["end"] = summary.period.end.isoformat()
        out["context"]["period"] = period
    return out


def _docref_identifier(base_url: str, doc_id: str) -> dict[str, str]:
    return {"system": f"{base_url}/sid/treatment-summary-document", "value": doc_id}


def _conditional(identifier: Mapping[str, str]) -> str:
    return urlencode({"identifier": f"{identifier['system']}|{identifier['value']}"})


def fhir_requests(bundle: Mapping[str, Any], docref: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fhir channel's requests (paths relative to the referrer's base URL)."""
    return [
        {
            "method": "POST",
            "path": "Bundle",
            "headers": {"Content-Type": FHIR_JSON, "If-None-Exist": _conditional(bundle["identifier"])},
            "body": orjson.dumps(bundle).decode("utf-8"),
        },
        {
            "method": "POST",
            "path": "DocumentReference",
            "headers": {"Content-Type": FHIR_JSON, "If-None-Exist": _conditional(docref["identifier"][0])},
            "body": orjson.dumps(docref).decode("utf-8"),
        },
    ]


def webhook_requests(bundle: Mapping[str, Any], slot: DocumentSlot) -> list[dict[str, Any]]:
    """The webhook channel's one request; the delivery id lets a receiver drop a repeat."""
    return [
        {
            "method": "POST",
            "path": "",
            "headers": {"Content-Type": FHIR_JSON, DELIVERY_HEADER: slot.version_id()},
            "body": orjson.dumps(bundle).decode("utf-8"),
        }
    ]


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One HTTP request ready to send: absolute URL from the configuration, headers signed if a webhook."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def materialize(
    payload: Mapping[str, Any], referrer: Referrer, environ: Mapping[str, str], now: float
) -> list[OutgoingRequest]:
    """The stored payload as requests to the referrer's configured URL, signed at `now` for a webhook.

    Raises DeliveryConfigError (the transport should not retry until the configuration changes) when the
    channel changed since preparation, the URL is not allowed or the webhook secret is not set.
    """
    if payload.get("channel") != referrer.channel:
        raise DeliveryConfigError(f"referrer {referrer.name!r}: prepared for another channel; prepare again")
    problem = url_problem(referrer.url)
    if problem:
        raise DeliveryConfigError(f"referrer {referrer.name!r}: url {problem}")
    out = []
    for request in payload["requests"]:
        body = request["body"].encode("utf-8")
        headers = dict(request["headers"])
        url = referrer.url.rstrip("/") + "/" + request["path"] if request["path"] else referrer.url
        if referrer.channel == "webhook":
            secret = environ.get(referrer.secret_env or "", "")
            if not secret:
                raise DeliveryConfigError(
                    f"referrer {referrer.name!r}: env var {referrer.secret_env} is not set"
                )
            headers.update(signed_headers(secret, body, now))
        out.append(OutgoingRequest(request["method"], url, headers, body))
    return out

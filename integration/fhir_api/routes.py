"""The FHIR REST surface as a table of thin handlers: metadata, read, vread, history, search.

Every PHI read needs a SMART access token whose scopes cover the interaction, and is audited.
Bodies are the stored bytes. Clients restricted to a Group see only its members' data
(`compartment.py`); anything else is answered as "absent", the same as a missing id. A record
can move to another patient, so history and vread judge each version by its own patient; a
restricted client sees only the current version of its own Group (older ones name former members).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from importlib.metadata import version

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy import Connection

from integration.audit import audit
from integration.auth.smart import SmartAuthError, checking_connection, require_scope, token_url
from integration.auth.smart_clients import Grant
from integration.fhir_api.capability import SERVED_TYPES, capability_statement
from integration.fhir_api.compartment import patient_scope
from integration.fhir_api.history_api import MAX_AUDITED_PATIENTS, history_entry
from integration.fhir_api.history_api import history as history_of
from integration.fhir_api.outcomes import answer_errors_as_outcomes, operation_outcome, render
from integration.fhir_api.search_api import fhir_base, prefers_strict, search
from integration.fhir_api.search_query import SearchError
from integration.http_errors import ApiError
from integration.store.resources import ResourceRepository, StoredResource
from integration.strict_params import is_fhir_id, whole_number

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
_FORMATS = {
    "json": "json",
    "application/json": "json",
    "application/fhir+json": "json",
    "xml": "xml",
    "text/xml": "xml",
    "application/xml": "xml",
    "application/fhir+xml": "xml",
}
# Accept headers naming one type, as FHIR clients send them: answered without parsing (the same
# choice `best_match` makes for them; anything else is parsed).
_PLAIN_ACCEPT = {name: fmt for name, fmt in _FORMATS.items() if "/" in name} | {"*/*": "json"}
_PUBLISHED = datetime.now(UTC).isoformat(timespec="seconds")


class FhirError(ApiError):
    """A FHIR request that cannot be answered as asked (unknown type, id, format)."""


answer_errors_as_outcomes(bp)


@bp.errorhandler(SearchError)
def _bad_search(exc: SearchError) -> Response:
    return operation_outcome(400, str(exc), None, g.get("fhir_format", "json"))


@bp.before_request
def _negotiate() -> None:
    """JSON or XML by `_format` or Accept; anything else is 406, never a silent JSON answer."""
    wanted = request.args.get("_format")
    if wanted is not None:
        fmt = _FORMATS.get(wanted)
        if fmt is None:
            raise FhirError(406, "not-acceptable", f"_format {wanted[:40]!r} is not served; use json or xml")
        g.fhir_format = fmt
        return
    plain = _PLAIN_ACCEPT.get(request.headers.get("Accept", "").strip())
    if plain is not None:
        g.fhir_format = plain
        return
    accept = request.accept_mimetypes
    if not accept:
        g.fhir_format = "json"
        return
    best = accept.best_match(
        ["application/fhir+json", "application/json", "application/fhir+xml", "application/xml", "text/xml"]
    )
    if best is None:
        raise FhirError(
            406, "not-acceptable", "this server answers application/fhir+json or application/fhir+xml"
        )
    g.fhir_format = _FORMATS[best]


@bp.get("/metadata")
def metadata() -> Response:
    settings = current_app.config["HORIZON_SETTINGS"]
    statement = capability_statement(token_url(settings), _software_version(), _PUBLISHED)
    return render(statement, g.fhir_format)


@bp.get("/<resource_type>")
def search_type(resource_type: str) -> Response:
    pairs = list(request.args.items(multi=True))
    strict = prefers_strict(request.headers.get("Prefer"))
    return search(resource_type, _authorizer(resource_type), pairs, strict, g.fhir_format)


@bp.post("/<resource_type>/_search")
def search_type_post(resource_type: str) -> Response:
    """The same search with parameters in a form body (R4 3.1.1.0.1), answered like the GET."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise FhirError(415, "unsupported-media-type", "POST _search takes application/x-www-form-urlencoded")
    _granted(resource_type, "search-type")  # refused before the form body is read
    pairs = [*request.args.items(multi=True), *request.form.items(multi=True)]
    strict = prefers_strict(request.headers.get("Prefer"))
    return search(resource_type, _authorizer(resource_type), pairs, strict, g.fhir_format)


@bp.get("/<resource_type>/_history")
def history_type(resource_type: str) -> Response:
    grant = _granted(resource_type, "history-type")
    return history_of([resource_type], grant, list(request.args.items(multi=True)), g.fhir_format)


@bp.get("/_history")
def history_system() -> Response:
    """All types at once, limited to the types the token's scopes allow (403 when none)."""
    refusal: SmartAuthError | None = None
    for resource_type in SERVED_TYPES:
        try:
            grant = require_scope(resource_type, "history-system")
        except SmartAuthError as exc:
            if exc.status != 403:
                raise
            refusal = exc
            continue
        types = [t for t in SERVED_TYPES if grant.allows(t, "history-system")]
        return history_of(types, grant, list(request.args.items(multi=True)), g.fhir_format, system=True)
    raise refusal or FhirError(403, "forbidden", "no resource type is in scope")


@bp.get("/<resource_type>/<resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    return _one(resource_type, resource_id, None)


@bp.get("/<resource_type>/<resource_id>/_history/<version_id>")
def vread(resource_type: str, resource_id: str, version_id: str) -> Response:
    version = whole_number(version_id, max_digits=9)  # version_id is a 32-bit column
    if version is None:
        _granted(resource_type, "vread")
        raise FhirError(404, "not-found", "no such version")
    return _one(resource_type, resource_id, version)


@bp.get("/<resource_type>/<resource_id>/_history")
def history(resource_type: str, resource_id: str) -> Response:
    """Every version the client may see, each judged by its own patient (a record can move)."""
    grant = _granted(resource_type, "history-instance")
    entry = audit("fhir.history", entity=f"{resource_type}/{resource_id[:64]}")
    _known_id(resource_type, resource_id)
    with current_app.extensions["horizon.db"].reader() as conn:
        versions = ResourceRepository(conn).history(resource_type, resource_id)
        scope = patient_scope(conn, grant)
    shown = [v for v in versions if scope.allows(resource_type, resource_id, v.patient_id)]
    if resource_type == "Group" and not scope.unrestricted:
        # Older versions of its own Group would name former members: a restricted client sees the current one.
        shown = shown[-1:]
    if not shown:
        raise FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known")
    patients = sorted({v.patient_id for v in shown} - {None})
    entry.detail = {"versions": len(shown), "patients": patients[:MAX_AUDITED_PATIENTS]}
    if len(patients) == 1:
        entry.patient_id = patients[0]
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": len(shown),
        "entry": [
            history_entry(
                fhir_base(), v.resource_type, v.id, v.version_id, v.deleted, v.content, v.last_updated
            )
            for v in reversed(shown)
        ],
    }
    return render(bundle, g.fhir_format)


@bp.route("/<path:_rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def unsupported(_rest: str) -> Response:
    raise FhirError(404, "not-supported", "this interaction is not implemented (see /fhir/metadata)")


@cache
def _software_version() -> str:
    return version("horizon-integration")


def _authorizer(resource_type: str) -> Callable[[Connection | None], Grant]:
    """The search-type check for `search`, run in its read transaction (the type is checked now)."""
    if resource_type not in SERVED_TYPES:
        raise FhirError(404, "not-supported", f"resource type {resource_type[:40]!r} is not served here")
    return lambda conn: require_scope(resource_type, "search-type", conn)


def _granted(resource_type: str, interaction: str, conn: Connection | None = None) -> Grant:
    if resource_type not in SERVED_TYPES:
        raise FhirError(404, "not-supported", f"resource type {resource_type[:40]!r} is not served here")
    return require_scope(resource_type, interaction, conn)


def _one(resource_type: str, resource_id: str, version_id: int | None) -> Response:
    with checking_connection(current_app.extensions["horizon.db"].autocommit()) as conn:  # token, then read
        grant = _granted(resource_type, "read" if version_id is None else "vread", conn)
        entry = audit(
            "fhir.read" if version_id is None else "fhir.vread", entity=f"{resource_type}/{resource_id[:64]}"
        )
        _known_id(resource_type, resource_id)
        repo = ResourceRepository(conn)
        stored = repo.read(resource_type, resource_id, version_id)
        scope = patient_scope(conn, grant)
        visible = stored is not None and scope.allows(resource_type, resource_id, stored.patient_id)
        if visible and version_id is not None and resource_type == "Group" and not scope.unrestricted:
            current = repo.read(resource_type, resource_id)  # former members stay hidden (see history)
            visible = current is not None and current.version_id == version_id
    if stored is None or not visible:
        raise FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known")
    entry.patient_id = stored.patient_id
    headers = {
        "ETag": f'W/"{stored.version_id}"',
        "Last-Modified": format_datetime(stored.last_updated, usegmt=True),
    }
    if stored.deleted:
        raise FhirError(410, "gone", f"{resource_type}/{resource_id} was deleted", headers)
    if _not_modified(stored):
        return Response(status=304, headers=headers)
    return render(stored.content or "", g.fhir_format, headers=headers)


def _known_id(resource_type: str, resource_id: str) -> None:
    """An id no resource can have is absent before any SQL runs (a NUL would fail it on PostgreSQL)."""
    if not is_fhir_id(resource_id):
        raise FhirError(404, "not-found", f"{resource_type}/{resource_id[:64]!r} is not a FHIR id")


def _not_modified(stored: StoredResource) -> bool:
    tags = request.headers.get("If-None-Match")
    if tags is not None:
        wanted = {t.strip() for t in tags.split(",")}
        return "*" in wanted or f'W/"{stored.version_id}"' in wanted or f'"{stored.version_id}"' in wanted
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return stored.last_updated.replace(microsecond=0) <= moment
    return False

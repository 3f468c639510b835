"""A small real FHIR receiver for tests: keeps what it gets, honours transaction, batch and conditional
semantics (conditional create with If-None-Exist too), and can be told to fail (status bursts,
Retry-After, 401 once, bad entries, slowness, commit-then-fail, holding the Nth write open until the test
decides whether it commits). `/hook` is a webhook endpoint that
checks each request's signature with `webhook_signing.verify` (401 when it does not verify). Runs on
werkzeug on 127.0.0.1, random port, in a thread."""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from integration.summaries.webhook_signing import SignatureError, verify
from tests.sync.ehr_source import EhrSource

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns test output


def outcome(diagnostics: str, code: str = "invalid") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


@dataclass
class Stored:
    versions: list[dict[str, Any]] = field(default_factory=list)  # distinct contents, in order
    deleted: bool = False


@dataclass
class Hold:
    """The Nth write request waits for `release` (set `commit` first); the sender can be killed meanwhile."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    commit: bool = False
    writes: list[tuple[str, str, str | None]] = field(default_factory=list)  # applied while held


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a == b


class Receiver:
    def __init__(
        self,
        *,
        transaction: bool = True,
        batch: bool = True,
        conditional: bool = True,
        token: str | None = None,
    ) -> None:
        self.transaction, self.batch, self.conditional = transaction, batch, conditional
        self.token = token  # required bearer token (None: no auth)
        self.store: dict[tuple[str, str], Stored] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.writes: list[tuple[str, str, str | None]] = []  # (method, type/id, versionId) applied
        self.headers_seen: list[dict[str, str]] = []
        self.failures: deque[tuple[int, dict[str, str], dict[str, Any] | None, bool]] = deque()
        self.bad_ids: dict[str, int] = {}  # resource id -> status to refuse it with
        self.delay = 0.0
        self.slow_next = 0  # this many next writes sleep `slow_seconds` before answering (after applying)
        self.slow_seconds = 0.0
        self.unauthorized_once = False
        self.tokens_issued = 0
        self.created: list[tuple[str, str]] = []  # (type, id) of each conditional create that created
        self.webhook_secret: str | None = None
        self.hook_attempts: list[tuple[dict[str, str], bytes, int]] = []  # headers, body, status
        self.hooks: list[bytes] = []  # bodies accepted at /hook
        self.holds: dict[int, Hold] = {}  # 1-based number of a write request -> its hold
        self.write_requests = 0
        self.lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/fhir"
        self.hook_url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self.token_url = f"http://127.0.0.1:{self._server.server_port}/token"
        self.ehr = EhrSource(self.url)  # what the hospital owns, for pulls
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- control -------------------------------------------------------------------------------
    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def fail_next(
        self,
        count: int,
        status: int,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        commit: bool = False,
    ) -> None:
        """The next `count` writes answer `status`; `commit` applies the write first (lost answer)."""
        for _ in range(count):
            self.failures.append((status, headers or {}, body, commit))

    def hold(self, nth: int) -> Hold:
        """Hold the `nth` write request (counted from 1) open until `Hold.release` is set."""
        self.holds[nth] = Hold()
        return self.holds[nth]

    def versions(self, resource_type: str, resource_id: str) -> list[int]:
        stored = self.store.get((resource_type, resource_id))
        return [int(v["meta"]["versionId"]) for v in stored.versions] if stored else []

    def by_identifier(self, resource_type: str, system: str, value: str) -> list[tuple[str, str]]:
        def idents(resource: dict[str, Any]) -> list[dict[str, Any]]:
            found = resource.get("identifier") or []
            return [found] if isinstance(found, dict) else found

        return [
            k
            for k, s in self.store.items()
            if k[0] == resource_type
            and s.versions
            and any(i.get("system") == system and i.get("value") == value for i in idents(s.versions[-1]))
        ]

    # --- WSGI ----------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        response = self.handle(request)
        with self.lock:
            self.requests.append((request.method, request.full_path.rstrip("?"), response.status_code))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/token" and request.method == "POST":
            return self._token(request)
        if path == "/hook" and request.method == "POST":
            return self._hook(request)
        if not path.startswith("/fhir"):
            return self._json(404, outcome("not found", "not-found"))
        rel = path[len("/fhir") :].strip("/")
        if rel == "metadata":
            return self._json(200, self.capability())
        if rel == ".well-known/smart-configuration":
            return self._json(
                200,
                {
                    "token_endpoint": self.token_url,
                    "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                    "grant_types_supported": ["client_credentials"],
                },
            )
        with self.lock:
            self.headers_seen.append(dict(request.headers))
        if self.token is not None:
            if self.unauthorized_once:
                self.unauthorized_once = False
                return self._json(401, outcome("token expired", "login"))
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._json(401, outcome("no valid token", "login"))
        if self.delay:
            time.sleep(self.delay)
        hold = None
        if request.method != "GET":
            with self.lock:
                self.write_requests += 1
                hold = self.holds.get(self.write_requests)
        if hold is not None:
            return self._held(request, hold)
        return self._answer(request)

    def _held(self, request: Request, hold: Hold) -> Response:
        request.get_data()  # the whole body is here (cached) before the client may die
        hold.arrived.set()
        try:
            if not hold.release.wait(30):
                return self._json(503, outcome("held too long", "transient"))
            if not hold.commit:  # dropped unread: as if it never arrived
                return self._json(503, outcome("held, then dropped", "transient"))
            before = len(self.writes)
            answer = self._answer(request)
            hold.writes = self.writes[before:]
            return answer
        finally:
            hold.finished.set()

    def _answer(self, request: Request) -> Response:
        rel = request.path[len("/fhir") :].strip("/")
        with self.lock:
            failure = self.failures.popleft() if self.failures else None
            if failure and not failure[3]:
                status, headers, body, _ = failure
                return self._json(status, body or outcome(f"scripted {status}", "transient"), headers)
            answer = self._dispatch(
                request.method,
                rel,
                request.query_string.decode(),
                request.get_data(),
                request.headers.get("If-None-Exist"),
            )
            slow = self.slow_next > 0
            self.slow_next -= 1 if slow else 0
        if slow:
            time.sleep(self.slow_seconds)  # applied, but the answer comes too late
        with self.lock:
            if failure:
                status, headers, body, _ = failure
                return self._json(status, body or outcome("committed, then failed", "transient"), headers)
            return answer

    def _dispatch(
        self, method: str, rel: str, query: str, data: bytes, if_none_exist: str | None = None
    ) -> Response:
        if method == "GET":
            status, body = self.ehr.get(rel, query)
            return self._json(status, body if body is not None else outcome(f"GET {status}", "not-found"))
        if method == "POST" and rel == "":
            return self._bundle(orjson.loads(data))
        if method == "POST" and "/" not in rel:
            status, body = self._create(rel, if_none_exist, orjson.loads(data))
            return self._json(status, body)
        status, body = self._write(method, rel, query, orjson.loads(data) if data else None)
        return self._json(status, body)

    def _bundle(self, bundle: dict[str, Any]) -> Response:
        kind = bundle.get("type")
        if (
            (kind == "transaction" and not self.transaction)
            or (kind == "batch" and not self.batch)
            or kind not in ("transaction", "batch")
        ):
            return self._json(400, outcome(f"{kind} not supported", "not-supported"))
        if kind == "transaction":  # FHIR R4 http.html#trules: identities that overlap SHALL fail it
            urls = [e["request"]["url"] for e in bundle.get("entry", [])]
            if len(set(urls)) != len(urls):
                return self._json(400, outcome("a transaction touches one resource twice", "processing"))
        snapshot = copy.deepcopy(self.store)
        entries = []
        for entry in bundle.get("entry", []):
            req = entry["request"]
            rel, _, query = req["url"].partition("?")
            status, body = self._write(req["method"], rel, query, entry.get("resource"))
            if kind == "transaction" and status >= 400:
                self.store = snapshot
                return self._json(status, body)
            answer: dict[str, Any] = {"status": f"{status} {'OK' if status < 300 else 'Error'}"}
            if status >= 400:
                answer["outcome"] = body
            entries.append({"response": answer})
        return self._json(200, {"resourceType": "Bundle", "type": f"{kind}-response", "entry": entries})

    def _write(self, method: str, rel: str, query: str, resource: dict[str, Any] | None) -> tuple[int, Any]:
        parts = rel.split("/")
        resource_type = parts[0]
        if query:
            if not self.conditional:
                return 400, outcome("conditional update not supported", "not-supported")
            system, _, value = unquote(parse_qs(query)["identifier"][0]).partition("|")
            matches = self.by_identifier(resource_type, system, value)
            if len(matches) > 1:
                return 412, outcome("more than one match", "multiple-matches")
            resource_id = matches[0][1] if matches else f"srv-{len(self.store) + 1}"
        elif len(parts) == 2:
            resource_id = unquote(parts[1])
        else:
            return 400, outcome("bad request path")
        if resource_id in self.bad_ids or (resource and resource.get("id") in self.bad_ids):
            status = self.bad_ids.get(resource_id) or self.bad_ids[resource["id"]]  # type: ignore[index]
            return status, outcome("rejected by the receiver's business rules", "business-rule")
        key = (resource_type, resource_id)
        version = (resource or {}).get("meta", {}).get("versionId")
        self.writes.append((method, f"{resource_type}/{resource_id}", version))
        stored = self.store.setdefault(key, Stored())
        if method == "DELETE":
            stored.deleted = True
            return 200, None
        if method != "PUT" or resource is None or resource.get("resourceType") != resource_type:
            return 400, outcome("PUT a resource of the URL's type")
        resource = {**resource, "id": resource_id}
        if not stored.versions or not _same(stored.versions[-1], resource) or stored.deleted:
            if not stored.versions or not _same(stored.versions[-1], resource):
                stored.versions.append(resource)
            stored.deleted = False
            return 201 if len(stored.versions) == 1 else 200, resource
        return 200, resource

    def _create(self, resource_type: str, if_none_exist: str | None, resource: Any) -> tuple[int, Any]:
        """POST [type]: a conditional create (FHIR R4 http.html#ccreate) when If-None-Exist is given."""
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            return 400, outcome("POST a resource of the URL's type")
        if if_none_exist:
            system, _, value = unquote(parse_qs(if_none_exist)["identifier"][0]).partition("|")
            matches = self.by_identifier(resource_type, system, value)
            if len(matches) > 1:
                return 412, outcome("more than one match", "multiple-matches")
            if matches:
                return 200, self.store[matches[0]].versions[-1]
        resource_id = f"srv-{len(self.store) + 1}"
        stored = {**resource, "id": resource_id}
        self.store[(resource_type, resource_id)] = Stored([stored])
        self.created.append((resource_type, resource_id))
        self.writes.append(("POST", f"{resource_type}/{resource_id}", None))
        return 201, stored

    def _hook(self, request: Request) -> Response:
        """A webhook receiver: the signature must verify over the raw body, then scripted failures apply."""
        body = request.get_data()
        headers = dict(request.headers)
        try:
            verify(self.webhook_secret or "", headers, body, time.time())
            status = 200
        except (SignatureError, ValueError):
            status = 401
        extra: dict[str, str] = {}
        with self.lock:
            if status == 200 and self.failures:
                status, extra, _body, _commit = self.failures.popleft()
            if status == 200:
                self.hooks.append(body)
            self.hook_attempts.append((headers, body, status))
        return self._json(status, None if status < 300 else outcome(f"webhook answered {status}"), extra)

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials" or not form.get("client_assertion"):
            return self._json(400, {"error": "invalid_request"})
        with self.lock:
            self.tokens_issued += 1
        return self._json(200, {"access_token": self.token or "t", "token_type": "bearer", "expires_in": 300})

    def capability(self) -> dict[str, Any]:
        interactions = [
            {"code": c} for c, on in (("transaction", self.transaction), ("batch", self.batch)) if on
        ]
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "software": {"name": "test-receiver"},
            "rest": [
                {
                    "mode": "server",
                    "interaction": interactions,
                    "resource": [
                        {"type": t, "conditionalUpdate": self.conditional}
                        for t in ("Observation", "Encounter")
                    ]
                    + [
                        {**entry, "conditionalUpdate": self.conditional}
                        for entry in self.ehr.capability_entries()
                    ],
                }
            ],
        }

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        data = orjson.dumps(body) if body is not None else b""
        return Response(data, status=status, headers=headers or {}, content_type="application/fhir+json")

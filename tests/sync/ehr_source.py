"""The EHR side of the test receiver: resources the hospital owns (ServiceRequest, Patient, Practitioner),
versioned with meta.versionId/lastUpdated, served by read and by search with `_lastUpdated=ge`,
`identifier=system|[value]`, `_sort=_lastUpdated`, `_count` and `next` paging. `last_updated=False`
makes a server that neither declares nor honours `_lastUpdated` (it ignores the parameter, as lenient
servers do); `sort=False` one that ignores `_sort` and answers newest first."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

SEARCHABLE = ("Patient", "ServiceRequest", "Practitioner")


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EhrSource:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.resources: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.last_updated = True
        self.sort = True
        self.searches: list[str] = []  # query strings of the searches received
        self.next_base: str | None = None  # tests: where `next` links point (default: this server)

    def put(self, resource: dict[str, Any], at: datetime) -> dict[str, Any]:
        """Store a new version (versionId + 1, lastUpdated `at`); answers the stored copy."""
        key = (resource["resourceType"], resource["id"])
        versions = self.resources.setdefault(key, [])
        stored = copy.deepcopy(resource)
        stored["meta"] = {
            **stored.get("meta", {}),
            "versionId": str(len(versions) + 1),
            "lastUpdated": instant(at),
        }
        versions.append(stored)
        return stored

    def capability_entries(self) -> list[dict[str, Any]]:
        params = [{"name": "identifier", "type": "token"}, {"name": "_count", "type": "number"}]
        if self.last_updated:
            params.append({"name": "_lastUpdated", "type": "date"})
        if self.sort:
            params.append({"name": "_sort", "type": "string"})
        return [
            {"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}], "searchParam": params}
            for t in SEARCHABLE
        ]

    def get(self, rel: str, query: str) -> tuple[int, Any]:
        parts = rel.split("/")
        if len(parts) == 2:
            versions = self.resources.get((parts[0], parts[1]))
            return (200, versions[-1]) if versions else (404, None)
        if len(parts) != 1 or parts[0] not in SEARCHABLE:
            return 400, None
        self.searches.append(query)
        return 200, self.search(parts[0], dict(parse_qsl(query)))

    def search(self, resource_type: str, params: dict[str, str]) -> dict[str, Any]:
        found = [v[-1] for (t, _), v in self.resources.items() if t == resource_type]
        since = params.get("_lastUpdated")
        if since and self.last_updated:
            assert since.startswith("ge")
            bound = datetime.fromisoformat(since[2:])
            found = [r for r in found if datetime.fromisoformat(r["meta"]["lastUpdated"]) >= bound]
        if "identifier" in params:
            system, _, value = params["identifier"].partition("|")
            found = [
                r
                for r in found
                if any(
                    i.get("system") == system and (not value or i.get("value") == value)
                    for i in r.get("identifier") or []
                )
            ]
        key = lambda r: datetime.fromisoformat(r["meta"]["lastUpdated"])  # noqa: E731
        if params.get("_sort") == "_lastUpdated" and self.sort:
            found.sort(key=key)
        else:
            found.sort(key=key, reverse=True)
        count, offset = int(params.get("_count", 50)), int(params.get("_offset", 0))
        page = found[offset : offset + count]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{resource_type}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in page
            ],
            "link": [],
        }
        if offset + count < len(found):
            nxt = urlencode({**params, "_offset": str(offset + count)})
            bundle["link"].append(
                {"relation": "next", "url": f"{self.next_base or self.base_url}/{resource_type}?{nxt}"}
            )
        return bundle

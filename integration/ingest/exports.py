"""Clinic exports on disk (an `.xml` file or a folder of CSV files) read into (kind, record) pairs.

Shared by `flask --app wsgi import` and the drop-folder poller, so both take exactly the same files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from integration.ingest.csv_reader import read_csv
from integration.ingest.export_fields import ReaderError
from integration.ingest.xml_reader import read_xml

if TYPE_CHECKING:
    from integration.ingest.service import Outcome


def read_export(path: Path) -> tuple[str, list[tuple[str, dict]]]:
    """(source, records) of the export at `path`; ReaderError when it is neither form or malformed."""
    if path.is_dir():
        files = {p.name: p.read_bytes() for p in sorted(path.glob("*.csv")) if p.is_file()}
        if not files:
            raise ReaderError(path.name, "the folder holds no .csv files")
        return "csv", read_csv(files)
    if path.is_file() and path.suffix.lower() == ".xml":
        return "xml", read_xml(path.read_bytes(), name=path.name)
    raise ReaderError(path.name, "neither an .xml file nor a folder of CSV files")


def tally(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """accepted / unchanged / rejected counts, always all three keys."""
    counts = Counter(o.status for o in outcomes)
    return {status: counts.get(status, 0) for status in ("accepted", "unchanged", "rejected")}


def rejections(outcomes: Iterable[Outcome]) -> list[dict[str, str | None]]:
    """Each rejection by kind, id, field path and rule: never the record's contents (PHI)."""
    return [
        {"kind": e.kind, "id": e.id, "path": e.path, "rule": e.rule}
        for o in outcomes
        if o.status == "rejected"
        for e in o.errors
    ]

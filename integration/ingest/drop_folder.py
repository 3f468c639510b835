"""The drop folder: clinic exports the charting system leaves on disk, taken in by the scheduler.

Layout under the configured folder (created on first poll, mode 0700: the files are PHI):
`inbox/` receives `*.xml` files and folders of CSV files; each entry taken is moved, with a UTC
time prefix, to `done/` (every record accepted or unchanged), `rejected/` (read, but some records
were rejected: the others are stored) or `failed/` (unreadable: nothing stored), with a
`<name>.report.json` beside it that names each rejection by kind, id, field and rule, never by
content. An entry is taken only once nothing in it changed for `min_age` seconds, so a file still
being written is left for the next poll; names starting with `.` or ending in `.part`/`.tmp` are
never taken. Re-running an entry (a crash between storing and moving it) changes nothing, since
intake is idempotent by content.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from integration.ingest.export_fields import ReaderError
from integration.ingest.exports import read_export, rejections, tally
from integration.store.audit import AuditEntry

log = logging.getLogger(__name__)

SUBFOLDERS = ("inbox", "done", "rejected", "failed")
_IN_PROGRESS_SUFFIXES = (".part", ".tmp")


class Intake(Protocol):
    """The store side: the same intake as the API, with the audit entry committed alongside."""

    def ingest(self, pairs: list[tuple[str, dict]], source: str, audit: AuditEntry) -> list[Any]: ...

    def refused(self, audit: AuditEntry) -> None: ...


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of one inbox entry."""

    name: str
    folder: str  # done, rejected or failed
    counts: dict[str, int]


def prepare(root: Path) -> None:
    for name in SUBFOLDERS:
        (root / name).mkdir(mode=0o700, parents=True, exist_ok=True)


def ready_entries(inbox: Path, min_age: float, now: float) -> list[Path]:
    """Inbox entries nobody is still writing, oldest first."""
    ready = []
    for entry in inbox.iterdir():
        if entry.name.startswith(".") or entry.name.endswith(_IN_PROGRESS_SUFFIXES):
            continue
        newest = max((_mtime(p) for p in _tree(entry)), default=_mtime(entry))
        if now - newest >= min_age:
            ready.append((newest, entry.name, entry))
    return [entry for _, _, entry in sorted(ready)]


def take(root: Path, entry: Path, intake: Intake, now: datetime) -> Taken:
    """Read, ingest and file away one inbox entry; the report is written before the entry moves."""
    audit = AuditEntry(action="intake.drop-folder", outcome=200, actor="drop-folder", entity=entry.name)
    report: dict[str, Any] = {"entry": entry.name, "taken_at": now.isoformat()}
    try:
        source, pairs = read_export(entry)
    except ReaderError as exc:
        # The reader's message locates the problem by file, line and column; it quotes no cell values.
        folder, counts = "failed", {"accepted": 0, "unchanged": 0, "rejected": 0}
        report |= {"error": str(exc), "counts": counts}
        audit.outcome, audit.detail = 422, {"error": "unreadable"}
        intake.refused(audit)
    else:
        outcomes = intake.ingest(pairs, source, audit)
        counts = tally(outcomes)
        folder = "rejected" if counts["rejected"] else "done"
        report |= {"source": source, "counts": counts, "rejections": rejections(outcomes)}
    stamped = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{entry.name}"
    target = root / folder / stamped
    _write_private(root / folder / f"{stamped}.report.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
    shutil.move(entry, target)
    return Taken(entry.name, folder, counts)


def poll(root: Path, intake: Intake, *, min_age: float, limit: int = 100) -> list[Taken]:
    """Take up to `limit` ready entries; one that cannot be moved stops the poll (retried next time)."""
    prepare(root)
    taken = []
    for entry in ready_entries(root / "inbox", min_age, time.time())[:limit]:
        taken.append(take(root, entry, intake, datetime.now(UTC)))
    return taken


def _tree(entry: Path) -> Iterator[Path]:
    if entry.is_dir():
        yield from entry.rglob("*")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed while we looked: treat as just changed
        return time.time()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)

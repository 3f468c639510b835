"""NDJSON files of one export job: one resource type per file, split at a line limit, written as streamed.

Lines are the stored bytes (compact JSON never holds a raw newline), so memory stays flat however
large the export. Names come from here, never from a URL: downloads look them up in `export_file`.
Files hold PHI, so they are created 0600 (owner only) whatever the process umask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import orjson

from integration.store.exports import ExportFile

_BUFFER = 256 * 1024
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


class _OpenFile:
    """One file being written: its handle, name, lines and bytes so far (mutated per line, not rebuilt)."""

    __slots__ = ("count", "handle", "name", "size")

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self.handle = handle
        self.name = name
        self.count = 0
        self.size = 0


class NdjsonSink:
    """Writes the lines of every (kind, type) of one job under `directory`, splitting at `max_lines`."""

    def __init__(self, directory: Path, max_lines: int) -> None:
        self.directory = directory
        self.max_lines = max(1, max_lines)
        self.files: list[ExportFile] = []
        self._open: dict[tuple[str, str], _OpenFile] = {}
        self._parts: dict[tuple[str, str], int] = {}
        self._created: list[str] = []
        self.lines = 0

    def write(self, kind: str, resource_type: str, line: bytes) -> None:
        """Append one line (a resource, a deletion Bundle, or an OperationOutcome)."""
        key = (kind, resource_type)
        current = self._open.get(key)
        if current is None or current.count >= self.max_lines:
            current = self._next_file(key)
        current.handle.write(line + b"\n")  # one buffered write a line: this runs for every resource
        current.count += 1
        current.size += len(line) + 1
        self.lines += 1

    def _next_file(self, key: tuple[str, str]) -> _OpenFile:
        if key in self._open:
            self._close(key)
        part = self._parts.get(key, 0) + 1
        self._parts[key] = part
        name = _name(key[0], key[1], part)
        handle = os.fdopen(
            os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb", _BUFFER
        )
        self._created.append(name)
        opened = self._open[key] = _OpenFile(handle, name)
        return opened

    def write_resource(self, resource_type: str, content: str) -> None:
        self.write("output", resource_type, content.encode())

    def write_deleted(self, resource_type: str, resource_id: str) -> None:
        """Bulk Data 2.0 `deleted`: a transaction Bundle with one DELETE entry per line."""
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": f"{resource_type}/{resource_id}"}}],
        }
        self.write("deleted", resource_type, orjson.dumps(bundle))

    def write_error(self, diagnostics: str) -> None:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics}],
        }
        self.write("error", "OperationOutcome", orjson.dumps(outcome))

    def finish(self, resource_type: str) -> None:
        """Close the files of a type that is done, so only one type's buffers are ever held."""
        for key in [k for k in self._open if k[1] == resource_type]:
            self._close(key)

    def close(self) -> list[ExportFile]:
        """Flush and close every file; the files in manifest order (outputs, then deleted, then errors)."""
        for key in list(self._open):
            self._close(key)
        order = {"output": 0, "deleted": 1, "error": 2}
        created = {name: i for i, name in enumerate(self._created)}
        return sorted(self.files, key=lambda f: (order[f.kind], created[f.name]))

    def _close(self, key: tuple[str, str]) -> None:
        done = self._open.pop(key)
        done.handle.close()
        self.files.append(ExportFile(done.name, key[0], key[1], done.count, done.size))


def _name(kind: str, resource_type: str, part: int) -> str:
    if kind == "output":
        return f"{resource_type}-{part}.ndjson"
    if kind == "deleted":
        return f"deleted-{resource_type}-{part}.ndjson"
    return f"errors-{part}.ndjson"

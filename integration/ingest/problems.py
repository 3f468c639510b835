"""What a rejected clinic record is told: the record, the field path and the rule it broke."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordError:
    """One broken rule of the clinic record contract (`shared/spec/clinic-records.md`).

    `kind` is the singular record kind (`patient`, `practitioner`, `session`, `assessment`,
    `referral`); `path` names the field inside the record, e.g. `vitals[3].diastolic`.
    """

    kind: str
    id: str | None
    path: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "id": self.id,
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Reference:
    """A pointer from one record to another that must exist (referential integrity)."""

    path: str
    kind: str
    id: str

"""Repository of EHR patient links: per destination, which EHR Patient id is which clinic patient (MRN).

Both directions are unique per destination: one EHR Patient per clinic patient, one clinic patient per
EHR Patient. The rule that uses them is in pull_records.py (`PageResolver.patients`); an admin who finds
a link wrong removes it (`flask --app wsgi sync unlink`), and the next pull links afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from integration.store.schema import ehr_patient_link
from integration.sync.outbox import chunks


class PatientLinkRepository:
    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def find(
        self, destination: str, patient_ids: Iterable[str], ehr_ids: Iterable[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(clinic patient id -> EHR id, EHR id -> clinic patient id) of the links naming any given."""
        t = ehr_patient_link.c
        by_patient: dict[str, str] = {}
        by_ehr: dict[str, str] = {}
        for column, values in ((t.patient_id, patient_ids), (t.ehr_patient_id, ehr_ids)):
            for part in chunks(sorted(set(values)), 400):
                rows = self._conn.execute(
                    select(t.patient_id, t.ehr_patient_id).where(
                        t.destination == destination, column.in_(list(part))
                    )
                )
                for row in rows:
                    by_patient[row.patient_id] = row.ehr_patient_id
                    by_ehr[row.ehr_patient_id] = row.patient_id
        return by_patient, by_ehr

    def link(self, destination: str, patient_id: str, ehr_id: str, now: datetime) -> bool:
        """Record a new link; False when either side got linked meanwhile (nothing recorded then)."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(ehr_patient_link).values(
                        destination=destination, patient_id=patient_id, ehr_patient_id=ehr_id, linked_at=now
                    )
                )
        except IntegrityError:
            return False
        return True

    def all(self, destination: str) -> list[tuple[str, str, datetime]]:
        """Every link of the destination: (clinic patient id, EHR Patient id, linked at), by patient."""
        t = ehr_patient_link.c
        rows = self._conn.execute(
            select(t.patient_id, t.ehr_patient_id, t.linked_at)
            .where(t.destination == destination)
            .order_by(t.patient_id)
        )
        return [(r.patient_id, r.ehr_patient_id, r.linked_at) for r in rows]

    def unlink(
        self, destination: str, patient_id: str | None = None, ehr_id: str | None = None
    ) -> tuple[str, str] | None:
        """Remove the link naming that clinic patient or that EHR Patient: (patient id, EHR id), or None."""
        if (patient_id is None) == (ehr_id is None):
            raise ValueError("name exactly one of the clinic patient and the EHR Patient")
        t = ehr_patient_link.c
        side = t.patient_id == patient_id if patient_id is not None else t.ehr_patient_id == ehr_id
        row = self._conn.execute(
            select(t.patient_id, t.ehr_patient_id).where(t.destination == destination, side)
        ).first()
        if row is None:
            return None
        self._conn.execute(
            delete(ehr_patient_link).where(t.destination == destination, t.patient_id == row.patient_id)
        )
        return row.patient_id, row.ehr_patient_id

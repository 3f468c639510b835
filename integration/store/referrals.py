"""Repository of referral links: which referrer and patient each current referral names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from integration.store.keys import grouped_chunks
from integration.store.schema import referral_link


@dataclass(frozen=True, slots=True)
class ReferralLink:
    referral_id: str
    practitioner_id: str
    patient_id: str


class ReferralLinkRepository:
    """Reads and writes referral links on one connection; the caller owns the transaction."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def get(self, referral_ids: Sequence[str]) -> dict[str, ReferralLink]:
        t = referral_link.c
        found: dict[str, ReferralLink] = {}
        for _, ids in grouped_chunks(("referral", i) for i in referral_ids):
            for row in self._conn.execute(select(referral_link).where(t.referral_id.in_(ids))):
                found[row.referral_id] = ReferralLink(*row)
        return found

    def put(self, links: Sequence[ReferralLink]) -> None:
        """Insert or replace the links of these referrals."""
        if not links:
            return
        t = referral_link.c
        for _, ids in grouped_chunks(("referral", link.referral_id) for link in links):
            self._conn.execute(delete(referral_link).where(t.referral_id.in_(ids)))
        unique = {link.referral_id: link for link in links}
        self._conn.execute(
            insert(referral_link),
            [
                {
                    "referral_id": x.referral_id,
                    "practitioner_id": x.practitioner_id,
                    "patient_id": x.patient_id,
                }
                for x in unique.values()
            ],
        )

    def patients_of(self, practitioner_id: str) -> list[str]:
        """Clinic ids of the patients this practitioner referred (by any current referral)."""
        t = referral_link.c
        rows = self._conn.execute(
            select(t.patient_id).where(t.practitioner_id == practitioner_id).distinct().order_by(t.patient_id)
        )
        return list(rows.scalars())

    def referrers(self) -> list[str]:
        """Every practitioner named by a current referral."""
        t = referral_link.c
        return list(
            self._conn.execute(select(t.practitioner_id).distinct().order_by(t.practitioner_id)).scalars()
        )

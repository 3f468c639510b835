"""Referrer Groups kept current by intake: one Group per referring physician, rebuilt with its referrals.

Runs inside the intake's write transaction (invariant 1): a referral accepted, changed or moved to
another referrer updates the Groups of both referrers with new versions and change-feed rows, like
every resource. `backfill_groups` writes the Groups of referrals stored before Groups existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from integration.ingest.resources import Produced, mapped, write_resources
from integration.store.db import Database
from integration.store.referrals import ReferralLink, ReferralLinkRepository
from integration.store.resources import ResourceRepository
from mappings import MappingContext
from mappings.group import referrer_group_dict

SOURCE_KIND = "referrer-group"


def refresh_referrer_groups(
    conn: Connection, referrals: Iterable[Mapping[str, Any]], ctx: MappingContext, now: datetime
) -> int:
    """Record the accepted referrals' links and rewrite the Groups whose members changed; returns writes."""
    links = [ReferralLink(r["id"], r["practitioner_id"], r["patient_id"]) for r in referrals]
    if not links:
        return 0
    repo = ReferralLinkRepository(conn)
    before = repo.get([link.referral_id for link in links])
    affected: set[str] = set()
    for link in links:
        old = before.get(link.referral_id)
        if old != link:
            affected.add(link.practitioner_id)
            if old is not None:
                affected.add(old.practitioner_id)
    repo.put([link for link in links if before.get(link.referral_id) != link])
    return _write_groups(conn, repo, sorted(affected), ctx, now)


def backfill_groups(db: Database, ctx: MappingContext) -> int:
    """Write (new versions of) every referrer's Group from the stored referrals; idempotent."""
    with db.serialized_writer() as conn:
        repo = ReferralLinkRepository(conn)
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        return _write_groups(conn, repo, repo.referrers(), ctx, now)


def _write_groups(
    conn: Connection,
    repo: ReferralLinkRepository,
    practitioners: list[str],
    ctx: MappingContext,
    now: datetime,
) -> int:
    produced = [
        Produced(SOURCE_KIND, p, [mapped(referrer_group_dict(p, repo.patients_of(p), ctx), None)])
        for p in practitioners
    ]
    return write_resources(ResourceRepository(conn), produced, now) if produced else 0

"""`flask --app wsgi groups list|backfill`: find a referrer's Group id (for `clients register --group`)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from integration.ingest.groups import backfill_groups
from integration.store.referrals import ReferralLinkRepository
from integration.store.resources import ResourceRepository
from mappings.group import referrer_group_id

groups_cli = AppGroup("groups", help="Referrer Groups (one per referring physician).")


@groups_cli.command("list")
@click.option("--referrer", help="Only the Group of this referring practitioner (clinic id).")
def groups_list(referrer: str | None) -> None:
    """Print group id, referrer clinic id, member count and stored version, one Group a line."""
    with current_app.extensions["horizon.db"].reader() as conn:
        links = ReferralLinkRepository(conn)
        resources = ResourceRepository(conn)
        for practitioner in links.referrers():
            if referrer is not None and practitioner != referrer:
                continue
            group_id = referrer_group_id(practitioner)
            stored = resources.read("Group", group_id)
            version = f"v{stored.version_id}" if stored else "not stored (run groups backfill)"
            members = len(links.patients_of(practitioner))
            click.echo(f"{group_id}\t{practitioner}\t{members} patients\t{version}")


@groups_cli.command("backfill")
def groups_backfill() -> None:
    """Write every referrer's Group from the stored referrals (new versions only where they changed)."""
    written = backfill_groups(current_app.extensions["horizon.db"], current_app.extensions["horizon.mapping"])
    click.echo(f"{written} Group versions written")

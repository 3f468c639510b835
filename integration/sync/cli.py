"""`flask --app wsgi sync list|run|pull|capabilities|links|unlink`: the sync engine for operators."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import orjson
from flask import current_app
from flask.cli import AppGroup

from integration.store.audit import AuditEntry, AuditRepository
from integration.sync import pull_service, service
from integration.sync.engine import DeliveryEngine
from integration.sync.patient_links import PatientLinkRepository
from integration.sync.pull_guard import pull_blocked

sync_cli = AppGroup("sync", help="Deliver to external EHR destinations.")


def _destination(name: str):  # noqa: ANN202
    found = service.configured(current_app).get(name)
    if found is None:
        raise click.ClickException(f"no destination named {name!r} in the destinations file")
    return found


def _echo_run(run: dict) -> None:
    """A finished run as one JSON line (id, state, counts, errors: no resource content)."""
    click.echo(orjson.dumps({k: run[k] for k in ("run_id", "state", "counts", "errors")}, default=str))


@sync_cli.command("list")
def sync_list() -> None:
    """The configured destinations: name, kind, enabled, origin."""
    for d in service.configured(current_app).values():
        click.echo(f"{d.name}\t{d.kind}\t{'enabled' if d.enabled else 'disabled'}\t{d.origin}")


@sync_cli.command("run")
@click.argument("name")
@click.option(
    "--full", is_flag=True, help="Re-offer every current resource (delivered versions are skipped)."
)
def sync_run(name: str, full: bool) -> None:
    """Run one destination's sync now, in the foreground; prints the run's counts."""
    destination = _destination(name)
    if not destination.delivers:
        raise click.ClickException(f"{name} is disabled or not an EHR destination")
    db, settings = current_app.extensions["horizon.db"], current_app.config["HORIZON_SETTINGS"]
    run = service.run_now(db, settings, destination, {"full": full}, "cli")
    _echo_run(run)


@sync_cli.command("pull")
@click.argument("name")
@click.option(
    "--full", is_flag=True, help="Re-read everything the destination offers, not only what changed."
)
def sync_pull(name: str, full: bool) -> None:
    """Pull referrals and demographics from one destination now, in the foreground; prints the run."""
    destination = _destination(name)
    if not destination.pulls:
        raise click.ClickException(f"{name} is disabled or has no [destination.pull] table")
    app = current_app
    db, settings = app.extensions["horizon.db"], app.config["HORIZON_SETTINGS"]
    blocked = pull_blocked(db, destination)
    if blocked is not None:
        raise click.ClickException(blocked[1])
    run = pull_service.run_now(
        db, settings, app.extensions["horizon.mapping"], destination, {"full": full}, "cli"
    )
    _echo_run(run)


@sync_cli.command("capabilities")
@click.argument("name")
def sync_capabilities(name: str) -> None:
    """Read the destination's CapabilityStatement and SMART configuration again and store what was learned."""
    db, settings = current_app.extensions["horizon.db"], current_app.config["HORIZON_SETTINGS"]
    facts = DeliveryEngine(db, settings, _destination(name)).capabilities(refresh=True)
    click.echo(orjson.dumps(facts, option=orjson.OPT_INDENT_2))


@sync_cli.command("links")
@click.argument("name")
def sync_links(name: str) -> None:
    """The EHR patient links a pull made on that destination: clinic patient id, EHR Patient id, when."""
    _destination(name)
    with current_app.extensions["horizon.db"].reader() as conn:
        links = PatientLinkRepository(conn).all(name)
    for patient_id, ehr_id, linked_at in links:
        click.echo(f"{patient_id}\t{ehr_id}\t{linked_at.isoformat()}")


@sync_cli.command("unlink")
@click.argument("name")
@click.option("--patient", "patient_id", help="The clinic patient id (MRN) whose link to remove.")
@click.option("--ehr-patient", "ehr_id", help="The EHR Patient id whose link to remove.")
def sync_unlink(name: str, patient_id: str | None, ehr_id: str | None) -> None:
    """Remove a wrong EHR patient link (audited); the next pull links that patient afresh."""
    _destination(name)
    if (patient_id is None) == (ehr_id is None):
        raise click.UsageError("name exactly one of --patient and --ehr-patient")
    with current_app.extensions["horizon.db"].writer() as conn:
        removed = PatientLinkRepository(conn).unlink(name, patient_id=patient_id, ehr_id=ehr_id)
        if removed is not None:
            AuditRepository(conn).record(
                AuditEntry(
                    action="sync.pull.unlink",
                    outcome=200,
                    actor="cli",
                    role="admin",
                    patient_id=removed[0],
                    entity=f"{name}/Patient/{removed[1]}"[:200],
                    recorded_at=datetime.now(UTC),
                )
            )
    if removed is None:
        raise click.ClickException(f"no link of {name} names that patient")
    click.echo(
        f"unlinked {removed[0]} from EHR Patient {removed[1]} on {name}; versions rejected before are "
        f"read again only by a full pull: flask --app wsgi sync pull {name} --full"
    )

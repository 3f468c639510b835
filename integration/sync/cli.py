"""`flask --app wsgi sync list|run|capabilities`: the sync engine from the command line (operators)."""

from __future__ import annotations

import click
import orjson
from flask import current_app
from flask.cli import AppGroup

from integration.sync import service
from integration.sync.engine import DeliveryEngine

sync_cli = AppGroup("sync", help="Deliver to external EHR destinations.")


def _destination(name: str):  # noqa: ANN202
    found = service.configured(current_app).get(name)
    if found is None:
        raise click.ClickException(f"no destination named {name!r} in the destinations file")
    return found


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
    click.echo(orjson.dumps({k: run[k] for k in ("run_id", "state", "counts", "errors")}, default=str))


@sync_cli.command("capabilities")
@click.argument("name")
def sync_capabilities(name: str) -> None:
    """Read the destination's CapabilityStatement and SMART configuration again and store what was learned."""
    db, settings = current_app.extensions["horizon.db"], current_app.config["HORIZON_SETTINGS"]
    facts = DeliveryEngine(db, settings, _destination(name)).capabilities(refresh=True)
    click.echo(orjson.dumps(facts, option=orjson.OPT_INDENT_2))

"""Flask CLI commands: `flask --app wsgi db|tokens|clients|keys|groups|import|fhir|scheduler|sync|demo`."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from integration.auth.signing_keys_cli import keys_cli
from integration.auth.smart_cli import clients_cli
from integration.ingest.groups_cli import groups_cli
from integration.ingest.import_cli import import_command
from integration.store import migrate
from integration.store.search_cli import fhir_cli
from integration.store.tokens import ROLES, DuplicateTokenName, TokenRepository
from integration.sync.cli import sync_cli

db_cli = AppGroup("db", help="Database schema.")
tokens_cli = AppGroup("tokens", help="API bearer tokens for the clinic and admins.")


def register(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(import_command)
    app.cli.add_command(fhir_cli)
    app.cli.add_command(groups_cli)
    app.cli.add_command(sync_cli)


def _db():  # noqa: ANN202
    return current_app.extensions["horizon.db"]


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations, then store the resources the configuration defines."""
    from integration.ingest.groups import backfill_groups
    from integration.ingest.service import write_static_resources

    migrate.upgrade(_db().engine)
    written = write_static_resources(_db(), current_app.extensions["horizon.mapping"])
    written += backfill_groups(_db(), current_app.extensions["horizon.mapping"])
    revision = migrate.current_revision(_db().engine)
    click.echo(f"database at revision {revision}; {written} configuration resources written")


@db_cli.command("current")
def db_current() -> None:
    """Print the applied and the latest migration."""
    click.echo(f"current {migrate.current_revision(_db().engine)}, head {migrate.head_revision()}")


@tokens_cli.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="Unique name of the token's holder, e.g. charting-system.")
def tokens_create(role: str, name: str) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    try:
        with _db().writer() as conn:
            token = TokenRepository(conn).create(name, role)
    except DuplicateTokenName:
        raise click.ClickException(f"a token named {name!r} already exists") from None
    click.echo(token)


@tokens_cli.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke the named token at once."""
    with _db().writer() as conn:
        revoked = TokenRepository(conn).revoke(name)
    if not revoked:
        raise click.ClickException(f"no live token named {name!r}")
    click.echo(f"revoked {name}")


@tokens_cli.command("list")
def tokens_list() -> None:
    """List token names, roles and states (never the tokens)."""
    with _db().reader() as conn:
        for row in TokenRepository(conn).list():
            state = f"revoked {row['revoked_at']:%Y-%m-%d}" if row["revoked_at"] else "live"
            click.echo(f"{row['name']}\t{row['role']}\t{state}")


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the job scheduler in the foreground (production: beside web workers that run none)."""
    from integration.scheduler import SchedulerService

    service = SchedulerService(current_app._get_current_object())  # type: ignore[attr-defined]
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.start()
    click.echo("scheduler running; Ctrl-C stops it", err=True)
    stop.wait()
    service.stop()
    from integration.fhir_api.export_runner import stop_exports

    stop_exports(current_app._get_current_object())  # type: ignore[attr-defined]  # jobs it restarted
    sys.exit(0)


@click.command("demo")
@with_appcontext
@click.option("--patients", default=5, show_default=True)
@click.option("--sessions-per-patient", default=3, show_default=True)
@click.option("--seed", default=1, show_default=True)
def demo_command(patients: int, sessions_per_patient: int, seed: int) -> None:
    """Load synthetic (fake) clinic records through the intake path, for trying the service."""
    from integration.ingest import synthetic
    from integration.ingest.service import COLLECTIONS, ingest

    batch = synthetic.batch(seed, patients, sessions_per_patient)
    pairs = [(kind, r) for collection, kind in COLLECTIONS.items() for r in batch.get(collection, [])]
    outcomes = ingest(_db(), pairs, ctx=current_app.extensions["horizon.mapping"], source="api")
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))

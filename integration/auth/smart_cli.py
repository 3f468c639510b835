"""`flask --app wsgi clients register|list|revoke`: how an admin lets a hospital EHR in, and out again."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from integration.auth.smart import token_url
from integration.auth.smart_clients import RegistrationError, SmartClientRepository
from integration.auth.smart_keys import parse_allowlist

clients_cli = AppGroup("clients", help="SMART Backend Services clients (hospital EHRs).")


@clients_cli.command("register")
@click.option("--name", required=True, help="Unique name of the client, e.g. st-marys-ehr.")
@click.option(
    "--jwks-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The client's public JWKS (RSA or EC P-384 keys, each with a kid); stored in the database.",
)
@click.option("--jwks-url", help="Where the client publishes its JWKS; must be on smart_jwks_url_allowlist.")
@click.option("--scopes", required=True, help='The most it may be granted, e.g. "system/*.rs".')
@click.option("--group", "group_id", help="Restrict the client to the patients of this Group id.")
def clients_register(
    name: str, jwks_file: Path | None, jwks_url: str | None, scopes: str, group_id: str | None
) -> None:
    """Register a client; its client id is printed on the last line."""
    if (jwks_file is None) == (jwks_url is None):
        raise click.UsageError("give exactly one of --jwks-file or --jwks-url")
    settings = current_app.config["HORIZON_SETTINGS"]
    jwks = jwks_file.read_text(encoding="utf-8") if jwks_file is not None else None
    try:
        with current_app.extensions["horizon.db"].writer() as conn:
            client_id = SmartClientRepository(conn).register(
                name,
                scopes,
                jwks=jwks,
                jwks_url=jwks_url,
                jwks_allowlist=parse_allowlist(settings.smart_jwks_url_allowlist),
                group_id=group_id,
            )
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"registered {name}; assertions must name aud {token_url(settings)}")
    click.echo(client_id)


@clients_cli.command("list")
def clients_list() -> None:
    """List clients: id, name, scopes, group, key source and state."""
    with current_app.extensions["horizon.db"].reader() as conn:
        clients = SmartClientRepository(conn).list()
    for c in clients:
        keys = f"jwks-url {c.jwks_url}" if c.jwks_url else "jwks-file"
        state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "live"
        click.echo("\t".join([c.client_id, c.name, c.scope, c.group_id or "-", keys, state]))


@clients_cli.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Revoke a client at once: it gets no new tokens and its current tokens stop working."""
    with current_app.extensions["horizon.db"].writer() as conn:
        revoked = SmartClientRepository(conn).revoke(client_id)
    if not revoked:
        raise click.ClickException(f"no live client with id {client_id!r}")
    click.echo(f"revoked {client_id}")

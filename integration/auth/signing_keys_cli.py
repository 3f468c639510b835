"""`flask --app wsgi keys create|rotate|retire|list`: how an admin manages our assertion signing keys."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from integration.auth.signing_keys import KeyStore, SigningKeyError
from integration.auth.smart_keys import ALGORITHMS

keys_cli = AppGroup("keys", help="Private keys signing our own SMART client assertions (public at JWKS).")

_ALG = click.option(
    "--alg", type=click.Choice(list(ALGORITHMS)), default="RS384", show_default=True, help="Key algorithm."
)


def _store() -> KeyStore:
    return KeyStore.from_settings(current_app.config["HORIZON_SETTINGS"])


@keys_cli.command("create")
@_ALG
def keys_create(alg: str) -> None:
    """Create the first signing key and make it active; its kid is printed on the last line."""
    try:
        key = _store().create(alg)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {key.alg} key, active; published at /.well-known/jwks.json")
    click.echo(key.kid)


@keys_cli.command("rotate")
@_ALG
def keys_rotate(alg: str) -> None:
    """Make a new active key; the previous one stays published until retired. Prints the new kid last."""
    store = _store()
    try:
        previous = store.active()
        key = store.rotate(alg)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if previous is not None:
        click.echo(f"{previous.kid} is now published (retire it once no assertion signed with it is in use)")
    click.echo(f"created {key.alg} key, active")
    click.echo(key.kid)


# A base64url kid may begin with "-"; without this click would read it as an unknown option.
@keys_cli.command("retire", context_settings={"ignore_unknown_options": True})
@click.argument("kid")
def keys_retire(kid: str) -> None:
    """Remove a published key from the JWKS and delete its private key file. Prints the kid last."""
    try:
        key = _store().retire(kid)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("retired; its private key file is deleted")
    click.echo(key.kid)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys: kid, alg, state, created (never key material). The active kid is printed last."""
    try:
        keys = _store().keys()
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    for key in keys:
        click.echo("\t".join([key.kid, key.alg, key.state, key.created]))
    active = next((k for k in keys if k.state == "active"), None)
    click.echo(active.kid if active else "no active key")

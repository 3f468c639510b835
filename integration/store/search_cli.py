"""`flask --app wsgi fhir reindex`: rebuild the search index from the stored resources."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from integration.store.search_index import SearchIndex

fhir_cli = AppGroup("fhir", help="The FHIR store.")


@fhir_cli.command("reindex")
def reindex() -> None:
    """Rebuild every search-index row (after search_params.json changed); one transaction."""
    with current_app.extensions["horizon.db"].serialized_writer() as conn:
        count = SearchIndex(conn).rebuild()
    click.echo(f"search index rebuilt from {count} resources")

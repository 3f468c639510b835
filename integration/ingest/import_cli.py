"""`flask --app wsgi import PATH`: load a clinic CSV or XML export through the same intake as the JSON API.

PATH is an `.xml` file or a folder of the export's CSV files (every `*.csv` in it). The command prints the
accepted, unchanged and rejected counts and, for each rejection, its kind, id, field path and rule (never the
record's contents). It exits with status 1 when a record was rejected, and stops with an error, storing
nothing, when a file is malformed.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from integration.ingest.export_fields import ReaderError
from integration.ingest.exports import read_export, rejections, tally


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def import_command(path: Path) -> None:
    """Ingest a clinic export (an .xml file or a folder of CSV files) and report what was rejected."""
    from integration.ingest.service import ingest

    try:
        source, pairs = read_export(path)
    except ReaderError as exc:
        raise click.ClickException(str(exc)) from None
    db = current_app.extensions["horizon.db"]
    outcomes = ingest(db, pairs, ctx=current_app.extensions["horizon.mapping"], source=source)
    counts = tally(outcomes)
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
    for e in rejections(outcomes):
        click.echo(f"rejected {e['kind']} {e['id'] or '-'} {e['path'] or '-'} {e['rule']}")
    if counts["rejected"]:
        raise SystemExit(1)

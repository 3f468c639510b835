import re

from integration.store import migrate
from integration.store.tokens import TokenRepository


def test_tokens_create_prints_once_and_revoke(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "--role", "clinic", "--name", "charting"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    with db.reader() as conn:
        assert TokenRepository(conn).verify(token).role == "clinic"
    again = runner.invoke(args=["tokens", "create", "--role", "clinic", "--name", "charting"])
    assert again.exit_code != 0 and "already exists" in again.output
    listed = runner.invoke(args=["tokens", "list"])
    assert "charting\tclinic\tlive" in listed.output and token not in listed.output
    assert runner.invoke(args=["tokens", "revoke", "charting"]).exit_code == 0
    with db.reader() as conn:
        assert TokenRepository(conn).verify(token) is None
    assert runner.invoke(args=["tokens", "revoke", "charting"]).exit_code != 0


def test_bad_role_is_refused(app):
    result = app.test_cli_runner().invoke(args=["tokens", "create", "--role", "root", "--name", "x"])
    assert result.exit_code != 0


def test_db_upgrade_is_idempotent_and_stores_configuration_resources(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert int(re.search(r"(\d+) configuration resources written", first.output).group(1)) > 10
    second = runner.invoke(args=["db", "upgrade"])
    assert "; 0 configuration resources written" in second.output
    head = migrate.head_revision()
    assert f"current {head}, head {head}" in runner.invoke(args=["db", "current"]).output


def test_demo_loads_synthetic_records(app):
    result = app.test_cli_runner().invoke(args=["demo", "--patients", "2", "--sessions-per-patient", "1"])
    assert result.exit_code == 0, result.output
    assert "accepted=" in result.output and "rejected" not in result.output

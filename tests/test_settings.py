import tomllib
from pathlib import Path

import pytest

from integration.settings import DEFAULT_CONFIG_FILE, ConfigError, Settings, defaults, redact_url


def test_committed_toml_lists_every_setting_with_its_default():
    data = tomllib.loads(DEFAULT_CONFIG_FILE.read_text())
    assert data == defaults()


def test_environment_overrides_file(tmp_path: Path):
    config = tmp_path / "s.toml"
    config.write_text('port = 9001\nlog_level = "DEBUG"\n')
    s = Settings.load(environ={"HORIZON_CONFIG": str(config), "PORT": "9100"})
    assert s.port == 9100
    assert s.log_level == "DEBUG"


def test_database_url_from_env():
    s = Settings.load(environ={"DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert s.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nonsense = 1\n", "unknown setting"),
        ('port = "eighty"\n', "must be int"),
        ("port = true\n", "must be int"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_file_is_a_clear_error(tmp_path: Path, content: str, message: str):
    config = tmp_path / "s.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Settings.load(environ={"HORIZON_CONFIG": str(config)})


def test_missing_named_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a readable file"):
        Settings.load(environ={"HORIZON_CONFIG": str(tmp_path / "absent.toml")})


def test_bad_env_values_are_errors():
    with pytest.raises(ConfigError, match="not an integer"):
        Settings.load(environ={"PORT": "x"})
    with pytest.raises(ConfigError, match="not a boolean"):
        Settings.load(environ={"HORIZON_SCHEDULER": "maybe"})


def test_describe_hides_database_password():
    s = Settings.load(environ={"DATABASE_URL": "postgresql+psycopg://app:s3cret@db:5432/x"})
    shown = {row["name"]: row["value"] for row in s.describe()}
    assert "s3cret" not in str(shown)
    assert shown["database_url"] == "postgresql+psycopg://app:***@db:5432/x"
    assert redact_url("sqlite:///var/horizon.db") == "sqlite:///var/horizon.db"


def test_public_base_url_follows_host_and_port_unless_set():
    assert Settings.load(environ={"PORT": "8123"}).public_base_url == "http://127.0.0.1:8123"
    assert Settings.load(environ={"HOST": "::1", "PORT": "8124"}).public_base_url == "http://[::1]:8124"
    given = Settings.load(environ={"PORT": "8123", "HORIZON_PUBLIC_BASE_URL": "https://h.example.org"})
    assert given.public_base_url == "https://h.example.org"

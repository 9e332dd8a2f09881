"""Settings from flags and APP_* variables, the secret key file, and `run.py --help`."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Argon2Params, ConfigError, settings_from_args

ROOT = Path(__file__).resolve().parent.parent
LONG_SECRET = "k" * 40


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"APP_DB": str(tmp_path / "data" / "app.db"), **extra}


def test_defaults_apply_when_nothing_is_given(tmp_path: Path) -> None:
    settings = settings_from_args([], env_for(tmp_path))

    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.db_path == tmp_path / "data" / "app.db"
    assert settings.api_key is None
    assert settings.log_level == "INFO"
    assert settings.argon2 == Argon2Params()
    assert not settings.https
    assert not settings.demo
    assert settings.messages_per_minute == 30


def test_environment_variables_set_every_value(tmp_path: Path) -> None:
    env = env_for(
        tmp_path,
        APP_HOST="0.0.0.0",
        APP_PORT="7000",
        APP_API_KEY="env-api-key-0123456789",
        APP_LOG_LEVEL="debug",
        APP_HTTPS="1",
        APP_DEMO="yes",
    )

    settings = settings_from_args([], env)

    assert (settings.host, settings.port) == ("0.0.0.0", 7000)
    assert settings.api_key == "env-api-key-0123456789"
    assert settings.log_level == "DEBUG"
    assert settings.https and settings.demo
    assert settings.cookie_name == "__Host-session"


def test_a_flag_wins_over_its_environment_variable(tmp_path: Path) -> None:
    env = env_for(
        tmp_path,
        APP_HOST="0.0.0.0",
        APP_PORT="7000",
        APP_API_KEY="env-api-key-0123456789",
    )
    flag_db = tmp_path / "flag" / "other.db"

    settings = settings_from_args(
        ["--port", "9000", "--db", str(flag_db), "--api-key", "flag-api-key-0123456789"], env
    )

    assert settings.port == 9000
    assert settings.db_path == flag_db
    assert settings.api_key == "flag-api-key-0123456789"
    assert settings.host == "0.0.0.0"  # no flag given: the variable holds


def test_the_message_rate_limit_comes_from_its_flag_or_variable(tmp_path: Path) -> None:
    env = env_for(tmp_path, APP_MESSAGES_PER_MINUTE="12")
    assert settings_from_args([], env).messages_per_minute == 12
    assert settings_from_args(["--messages-per-minute", "90"], env).messages_per_minute == 90


@pytest.mark.parametrize(
    ("argv", "env"),
    [([], {"APP_PORT": "eighty"}), (["--port", "80a"], {}), (["--port", "-1"], {})],
    ids=["env-not-a-number", "flag-not-a-number", "negative"],
)
def test_a_bad_port_is_a_config_error_naming_app_port(
    tmp_path: Path, argv: list[str], env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="APP_PORT"):
        settings_from_args(argv, env_for(tmp_path, **env))


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"APP_LOG_LEVEL": "chatty"}, "APP_LOG_LEVEL"),
        ({"APP_API_KEY": "short"}, "APP_API_KEY"),
        ({"APP_CURRENCY": "dollars"}, "APP_CURRENCY"),
        ({"APP_ARGON2_MEMORY_KIB": "lots"}, "APP_ARGON2_MEMORY_KIB"),
        ({"APP_MESSAGES_PER_MINUTE": "0"}, "APP_MESSAGES_PER_MINUTE"),
    ],
)
def test_other_malformed_settings_name_their_variable(
    tmp_path: Path, env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        settings_from_args([], env_for(tmp_path, **env))


def test_the_secret_key_file_is_made_private_beside_the_database_and_reused(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "data" / "secret.key"
    assert not key_file.exists()

    first = settings_from_args([], env_for(tmp_path))

    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    assert key_file.read_bytes().strip() == first.secret_key

    second = settings_from_args([], env_for(tmp_path))

    assert second.secret_key == first.secret_key


def test_a_named_secret_key_file_is_used_instead(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "cookie.key"
    settings = settings_from_args(["--secret-key-file", str(key_file)], env_for(tmp_path))

    assert key_file.read_bytes().strip() == settings.secret_key
    assert not (tmp_path / "data" / "secret.key").exists()


def test_a_secret_key_file_that_is_too_short_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "secret.key"
    key_file.parent.mkdir()
    key_file.write_bytes(b"tiny")

    with pytest.raises(ConfigError, match="secret key file"):
        settings_from_args([], env_for(tmp_path))


def test_app_secret_key_is_used_directly_and_no_file_is_written(tmp_path: Path) -> None:
    settings = settings_from_args([], env_for(tmp_path, APP_SECRET_KEY=LONG_SECRET))

    assert settings.secret_key == LONG_SECRET.encode()
    assert not (tmp_path / "data" / "secret.key").exists()


def test_an_app_secret_key_shorter_than_32_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_SECRET_KEY"):
        settings_from_args([], env_for(tmp_path, APP_SECRET_KEY="k" * 31))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_run_py_help_lists_every_flag_with_its_variable() -> None:
    result = _run("--help")

    assert result.returncode == 0, result.stderr
    for flag in ("--host", "--port", "--db", "--api-key", "--secret-key-file", "--log-level"):
        assert flag in result.stdout
    assert "--demo" in result.stdout
    for variable in ("APP_HOST", "APP_PORT", "APP_DB", "APP_API_KEY", "APP_SECRET_KEY"):
        assert variable in result.stdout


def test_run_py_with_a_bad_setting_exits_with_a_clear_message(tmp_path: Path) -> None:
    result = _run(env={"APP_PORT": "eighty", "APP_DB": str(tmp_path / "app.db")})

    assert result.returncode == 2
    assert "configuration error: APP_PORT must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


PG_URL = "postgresql://market:pw@db.example:5432/market"


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--database-url", PG_URL], {}),
        ([], {"APP_DATABASE_URL": PG_URL}),
        (["--database-url", PG_URL], {"APP_DATABASE_URL": "postgresql://other/db"}),
    ],
    ids=["flag", "environment", "flag-wins"],
)
def test_a_database_url_selects_postgresql(argv: list[str], env: dict[str, str]) -> None:
    settings = settings_from_args(argv, {"APP_SECRET_KEY": LONG_SECRET, **env})

    assert settings.database_url == PG_URL


def test_without_a_database_url_the_sqlite_file_is_used(tmp_path: Path) -> None:
    assert settings_from_args([], env_for(tmp_path)).database_url is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/db", "must start with postgresql://"),
        ("sqlite:///data/app.db", "must start with postgresql://"),
        ("postgresql://db.example", "needs a host and a database name"),
        ("postgresql:///market", "needs a host and a database name"),
        ("postgresql://h:port/db", "not a valid URL"),
    ],
)
def test_a_bad_database_url_is_a_config_error_naming_app_database_url(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match="APP_DATABASE_URL") as caught:
        settings_from_args([], {"APP_SECRET_KEY": LONG_SECRET, "APP_DATABASE_URL": url})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--db", "x.db", "--database-url", PG_URL], {}),
        ([], {"APP_DB": "x.db", "APP_DATABASE_URL": PG_URL}),
    ],
    ids=["flags", "environment"],
)
def test_a_sqlite_file_and_a_database_url_together_are_refused(
    argv: list[str], env: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match="set one of them"):
        settings_from_args(argv, {"APP_SECRET_KEY": LONG_SECRET, **env})


def test_run_py_says_why_it_cannot_reach_postgresql_without_showing_the_password() -> None:
    result = subprocess.run(
        [sys.executable, "run.py", "--database-url", "postgresql://app:s3cret@127.0.0.1:1/x"],
        cwd=ROOT,
        env={**os.environ, "APP_SECRET_KEY": LONG_SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert "cannot start: cannot connect to PostgreSQL at postgresql://app@127.0.0.1:1/x" in (
        result.stderr
    )
    assert "s3cret" not in result.stderr + result.stdout

"""Settings: the env file format, precedence, database URLs and validation messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from bots.commands.show_settings import show_settings
from rewards.settings import Settings, SettingsError, load_settings, read_env_file

EXAMPLE = Path(__file__).resolve().parent.parent / "env" / ".env.example"
SETTINGS = (  # noqa: SIM905  (every name rewards/settings.py reads)
    "DATABASE_URL DBHOST DBPORT DBNAME DBUSER DBPWD TIMEZONE HOST PORT REWARDS_CATALOG "
    "REWARD_SCHEDULER ENABLE_REWARDS KUDOS_POINTS KUDOS_MAX_MESSAGE KUDOS_MAX_RECEIVERS "
    "REWARD_COOLDOWN_MINUTES REWARDS_ADMINS REWARDS_FUNCTION_MODULES SMTP_HOST SMTP_PORT "
    "SMTP_USER SMTP_PASSWORD SMTP_FROM TELEGRAM_BOT_TOKEN TELEGRAM_CHAT_ID BOT_REWARDS_ID "
    "BOT_REWARDS_SECRET REWARDS_TENANT_ID REWARD_MIDDLEWARE ENABLE_EVENT_MANAGER RABBITMQ_HOST "
    "RABBITMQ_PORT RABBITMQ_USER RABBITMQ_PASSWORD RABBITMQ_VHOST RABBITMQ_EXCHANGE RABBITMQ_QUEUE "
    "RABBITMQ_BINDINGS RABBITMQ_PREFETCH RABBITMQ_MAX_RETRIES RABBITMQ_RETRY_SECONDS "
    "MEMBERSHIP SLACK_TEAM_IDS TELEGRAM_ALLOWED_CHATS EVENT_LOOP"
).split()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, environ: dict[str, str] | None = None, file_text: str = "") -> Settings:
    """Settings from exactly `environ` and an env file holding `file_text`."""
    return load_settings(environ or {}, env_file=write(tmp_path / "test.env", file_text))


# --- the env file ------------------------------------------------------------------------------


def test_env_file_comments_quotes_and_export(tmp_path: Path) -> None:
    path = write(
        tmp_path / ".env",
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "PLAIN=value\n"
        "SPACED = spaced value  \n"
        "export EXPORTED=yes\n"
        'DOUBLE="double # not a comment"\n'
        "SINGLE='single quoted'\n"
        'QUOTED_THEN_COMMENT="kept" # dropped\n'
        "INLINE=value # trailing comment\n"
        "HASH_IN_VALUE=pa#ss\n"
        "EMPTY=\n"
        'EMPTY_QUOTES=""\n'
        "EQUALS=a=b=c\n",
    )
    assert read_env_file(path) == {
        "PLAIN": "value",
        "SPACED": "spaced value",
        "EXPORTED": "yes",
        "DOUBLE": "double # not a comment",
        "SINGLE": "single quoted",
        "QUOTED_THEN_COMMENT": "kept",
        "INLINE": "value",
        "HASH_IN_VALUE": "pa#ss",
        "EMPTY": "",
        "EMPTY_QUOTES": "",
        "EQUALS": "a=b=c",
    }


def test_missing_env_file_is_empty(tmp_path: Path) -> None:
    assert read_env_file(tmp_path / "nope.env") == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("JUST_A_WORD", "expected KEY=value"),
        ("=value", "expected KEY=value"),
        ("TWO WORDS=1", "expected KEY=value"),
        ('OPEN="no end', "OPEN has an unterminated quoted value"),
        ('AFTER="x" y', "AFTER has text after its closing quote"),
    ],
)
def test_malformed_env_file_lines_name_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path / "bad.env", f"# first\n{line}\n")
    with pytest.raises(SettingsError, match=message) as raised:
        read_env_file(path)
    assert f"{path}:2" in str(raised.value)


def test_environment_overrides_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {"TIMEZONE": "Europe/Madrid", "KUDOS_POINTS": "7"},
        "TIMEZONE=America/New_York\nKUDOS_POINTS=3\nPORT=8080\n",
    )
    assert settings.timezone == "Europe/Madrid"
    assert settings.kudos_points == 7
    assert settings.port == 8080  # only in the file


def test_default_env_file_is_env_dot_env_and_rewards_env_file_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "env" / ".env", "PORT=4000\n")
    write(tmp_path / "other.env", "PORT=5000\n")
    assert load_settings({}).port == 4000
    assert load_settings({"REWARDS_ENV_FILE": "other.env"}).port == 5000


def test_example_env_file_is_all_comments_and_names_every_setting(tmp_path: Path) -> None:
    assert read_env_file(EXAMPLE) == {}, "everything in env/.env.example must be commented out"
    examples = dict(
        re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", EXAMPLE.read_text(encoding="utf-8"), re.M)
    )
    assert set(examples) >= set(SETTINGS)
    # Uncommenting every line gives valid settings.
    uncommented = "".join(f"{name}={value}\n" for name, value in examples.items())
    settings = load(tmp_path, {}, uncommented)
    assert settings.database_url.startswith("postgresql+asyncpg://")


# --- the database URL --------------------------------------------------------------------------


def test_default_is_sqlite_under_var(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.database_url == "sqlite+aiosqlite:///var/rewards.db"
    assert settings.is_sqlite
    assert Path(make_url(settings.database_url).database or "") == Path("var") / "rewards.db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/r", "postgresql+asyncpg://u:p@db:5432/r"),
        ("postgresql://u:p@db/r", "postgresql+asyncpg://u:p@db/r"),
        ("postgresql+asyncpg://u@db/r", "postgresql+asyncpg://u@db/r"),
        ("sqlite:///data/r.db", "sqlite+aiosqlite:///data/r.db"),
        ("sqlite:////abs/r.db", "sqlite+aiosqlite:////abs/r.db"),
        ("sqlite+aiosqlite:///r.db", "sqlite+aiosqlite:///r.db"),
        ("  postgres://u@db/r  ", "postgresql+asyncpg://u@db/r"),
    ],
)
def test_database_url_is_normalised_to_the_async_drivers(
    tmp_path: Path, given: str, expected: str
) -> None:
    assert load(tmp_path, {"DATABASE_URL": given}).database_url == expected


def test_database_url_wins_over_db_parts(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {"DATABASE_URL": "postgres://a@url-host/urldb"},
        "DBHOST=parts-host\nDBPORT=6543\nDBNAME=partsdb\nDBUSER=b\nDBPWD=c\n",
    )
    assert settings.database_url == "postgresql+asyncpg://a@url-host/urldb"


@pytest.mark.parametrize("bad", ["mysql://u@h/d", "postgresql+psycopg://u@h/d", "just-a-path.db"])
def test_unsupported_database_url_fails_without_echoing_credentials(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL") as raised:
        load(tmp_path, {"DATABASE_URL": bad.replace("u@", "u:secret@")})
    assert "secret" not in str(raised.value)


def test_db_parts_build_a_postgresql_url_with_the_password_quoted(tmp_path: Path) -> None:
    password = "p@ss:w/rd%?#1 "
    settings = load(
        tmp_path,
        {"DBPWD": password},  # from the environment: a file would need quotes for the '#'
        "DBHOST=db.example.com\nDBPORT=6543\nDBNAME=rewards\nDBUSER=svc@corp\n",
    )
    url = make_url(settings.database_url)
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database) == ("db.example.com", 6543, "rewards")
    assert url.username == "svc@corp"
    assert url.password == password
    assert password not in settings.redacted_database_url()
    assert settings.redacted_database_url().endswith(":***@db.example.com:6543/rewards")


def test_db_parts_defaults_and_no_password(tmp_path: Path) -> None:
    settings = load(tmp_path, {"DBHOST": "localhost"})
    assert settings.database_url == "postgresql+asyncpg://postgres@localhost:5432/navigator"
    assert settings.redacted_database_url() == settings.database_url


def test_db_parts_quote_the_database_name_and_bracket_ipv6(tmp_path: Path) -> None:
    url = make_url(load(tmp_path, {"DBHOST": "::1", "DBNAME": "odd/name"}).database_url)
    assert (url.host, url.database) == ("::1", "odd/name")


def test_bad_dbport_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DBPORT"):
        load(tmp_path, {"DBHOST": "h", "DBPORT": "five"})


# --- validation --------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings == Settings(extra={})
    assert (settings.host, settings.port, settings.timezone) == ("127.0.0.1", 3978, "UTC")
    assert settings.catalog_files == ("examples/rewards.json",)
    assert settings.reward_scheduler and settings.enable_rewards


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEZONE", "Mars/Olympus_Mons"),
        ("TIMEZONE", "Europe"),  # a directory of the zone database, not a zone
        ("TIMEZONE", "../etc/passwd"),
        ("TIMEZONE", "x" * 300),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("PORT", "-1"),
        ("REWARD_SCHEDULER", "maybe"),
        ("ENABLE_REWARDS", "2"),
        ("KUDOS_POINTS", "1.5"),
        ("KUDOS_MAX_RECEIVERS", "0"),
        ("KUDOS_MAX_MESSAGE", "100000"),
        ("REWARD_COOLDOWN_MINUTES", "-5"),
        ("SMTP_PORT", "0"),
        ("CELEBRATION_WEEKEND_POLICY", "saturday"),
        ("REWARDS_SWEEP_MINUTES", "0"),
        ("DELIVERY_MAX_ATTEMPTS", "0"),
        ("DELIVERY_BACKOFF_SECONDS", "soon"),
        ("EVENT_LOOP", "trio"),
    ],
)
def test_bad_values_fail_naming_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} "):
        load(tmp_path, {name: value})


def test_bad_value_in_the_file_fails_too(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^PORT "):
        load(tmp_path, {}, "PORT=abc\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("on", True), ("false", False), ("OFF", False)],
)
def test_booleans(tmp_path: Path, raw: str, expected: bool) -> None:
    assert load(tmp_path, {"REWARD_SCHEDULER": raw}).reward_scheduler is expected


def test_scheduler_and_announcement_settings(tmp_path: Path) -> None:
    defaults = load(tmp_path, {})
    assert (defaults.weekend_policy, defaults.sweep_minutes) == ("on_day", 60)
    assert (defaults.delivery_max_attempts, defaults.delivery_backoff_seconds) == (5, 30)
    settings = load(
        tmp_path,
        {
            "CELEBRATION_WEEKEND_POLICY": "Monday_After",
            "REWARDS_SWEEP_MINUTES": "15",
            "ANNOUNCE_TEAMS_CHANNEL": "Rewards",
            "ANNOUNCE_SLACK_CHANNEL": "C0123456",
            "DELIVERY_MAX_ATTEMPTS": "8",
            "DELIVERY_BACKOFF_SECONDS": "10",
        },
    )
    assert settings.weekend_policy == "monday_after"
    assert settings.sweep_minutes == 15
    assert (settings.announce_teams, settings.announce_slack) == ("Rewards", "C0123456")
    assert (settings.delivery_max_attempts, settings.delivery_backoff_seconds) == (8, 10)


def test_valid_values_are_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {
            "TIMEZONE": "America/New_York",
            "HOST": "0.0.0.0",
            "PORT": "8080",
            "REWARDS_CATALOG": "a.json; b.json ,",
            "REWARD_SCHEDULER": "false",
            "KUDOS_POINTS": "0",
            "REWARDS_ADMINS": "Alice@Example.com, bob@example.com",
            "REWARDS_FUNCTION_MODULES": "acme.rewards",
            "SMTP_USER": "bot@example.com",
            "SLACK_BOT_TOKEN": "xoxb-1",
        },
    )
    assert settings.timezone == "America/New_York"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.catalog_files == ("a.json", "b.json")
    assert settings.reward_scheduler is False
    assert settings.kudos_points == 0
    assert settings.admins == ("alice@example.com", "bob@example.com")
    assert settings.function_modules == ("acme.rewards",)
    assert settings.smtp_from == "bot@example.com"  # falls back to SMTP_USER
    assert settings.extra == {"SLACK_BOT_TOKEN": "xoxb-1"}


def test_empty_catalog_setting_means_no_catalog(tmp_path: Path) -> None:
    assert load(tmp_path, {"REWARDS_CATALOG": ""}).catalog_files == ()


# --- Bot Framework credentials -----------------------------------------------------------------


def test_microsoft_app_variables_are_the_fallback(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {
            "MICROSOFT_APP_ID": "app-id",
            "MICROSOFT_APP_PASSWORD": "app-secret",
            "MICROSOFT_APP_TENANT_ID": "tenant",
        },
    )
    assert (settings.bot_app_id, settings.bot_app_secret, settings.bot_tenant_id) == (
        "app-id",
        "app-secret",
        "tenant",
    )


def test_bot_rewards_variables_win_over_microsoft_app_ones(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        {"MICROSOFT_APP_ID": "generic", "MICROSOFT_APP_PASSWORD": "generic-secret"},
        "BOT_REWARDS_ID=rewards-bot\nBOT_REWARDS_SECRET=rewards-secret\nREWARDS_TENANT_ID=t1\n",
    )
    assert (settings.bot_app_id, settings.bot_app_secret, settings.bot_tenant_id) == (
        "rewards-bot",
        "rewards-secret",
        "t1",
    )


# --- the event manager ------------------------------------------------------------------------


def test_the_event_manager_is_off_by_default_and_says_why(tmp_path: Path) -> None:
    manager = load(tmp_path).event_manager
    assert not manager.enabled and not manager.active
    assert manager.status() == "off: ENABLE_EVENT_MANAGER is not true"


def test_the_event_manager_settings(tmp_path: Path) -> None:
    manager = load(
        tmp_path,
        {
            "ENABLE_EVENT_MANAGER": "true",
            "RABBITMQ_HOST": "mq.internal",
            "RABBITMQ_PORT": "5673",
            "RABBITMQ_USER": "rewards",
            "RABBITMQ_PASSWORD": "s3cr:t@",
            "RABBITMQ_VHOST": "hr",
            "RABBITMQ_BINDINGS": "user.login, course.completed",
        },
    ).event_manager
    assert manager.active  # the events extra is installed in the test environment
    assert manager.url() == "amqp://rewards:s3cr%3At%40@mq.internal:5673/hr"
    assert "s3cr" not in manager.status()
    assert manager.status().startswith("on: amqp://rewards:***@mq.internal:5673/hr")
    assert manager.bindings == ("user.login", "course.completed")
    assert manager.url().endswith(":5673/hr")
    assert load(tmp_path, {}).event_manager.url() == "amqp://guest:guest@localhost:5672/%2F"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENABLE_EVENT_MANAGER", "maybe", "ENABLE_EVENT_MANAGER must be true or false"),
        ("RABBITMQ_PORT", "amqp", "RABBITMQ_PORT must be a whole number"),
        ("RABBITMQ_PREFETCH", "0", "RABBITMQ_PREFETCH must be between 1 and 10000"),
    ],
)
def test_bad_event_manager_settings_are_refused(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(tmp_path, {name: value})


def test_rewards_settings_shows_the_switches_and_hides_secrets(tmp_path: Path) -> None:
    env = {
        "REWARDS_ENV_FILE": str(tmp_path / "none.env"),
        "DATABASE_URL": "postgresql://rewards:db-secret@db.internal/rewards",
        "ENABLE_EVENT_MANAGER": "true",
        "RABBITMQ_PASSWORD": "mq-secret",
        "REWARD_SCHEDULER": "false",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
    }
    result = CliRunner().invoke(show_settings, [], env=env)
    assert result.exit_code == 0, result.output
    lines = dict(line.split("  ", 1) for line in result.output.splitlines())
    assert lines["database"].strip() == "postgresql+asyncpg://rewards:***@db.internal/rewards"
    assert lines["scheduler (REWARD_SCHEDULER)"].strip() == "off"
    assert (
        lines["event manager (ENABLE_EVENT_MANAGER)"]
        .strip()
        .startswith("on: amqp://guest:***@localhost:5672/")
    )
    assert lines["slack"].strip() == "on" and lines["telegram"].strip() == "off"
    assert "secret" not in result.output


def test_rewards_settings_shows_the_boundary_and_membership_policy(tmp_path: Path) -> None:
    env = {
        "REWARDS_ENV_FILE": str(tmp_path / "none.env"),
        "BOT_REWARDS_ID": "app",
        "REWARDS_TENANT_ID": "72f988bf-0000-0000-0000-2d7cd011db47",
        "SLACK_TEAM_IDS": "T0001,E0GRID",
        "TELEGRAM_CHAT_ID": "-1001234",
        "MEMBERSHIP": "directory",
    }
    result = CliRunner().invoke(show_settings, [], env=env)
    assert result.exit_code == 0, result.output
    lines = {k: v.strip() for k, v in (line.split("  ", 1) for line in result.output.splitlines())}
    assert lines["membership (MEMBERSHIP)"].startswith("directory: only people already imported")
    assert lines["teams boundary (REWARDS_TENANT_ID)"] == "72f988bf-0000-0000-0000-2d7cd011db47"
    assert lines["slack boundary (SLACK_TEAM_IDS)"] == "E0GRID, T0001"
    assert lines["telegram boundary (TELEGRAM_ALLOWED_CHATS)"].endswith("-1001234")

    open_env = {"REWARDS_ENV_FILE": env["REWARDS_ENV_FILE"], "BOT_REWARDS_ID": "app"}
    result = CliRunner().invoke(show_settings, [], env=open_env)
    assert "ANY tenant" in result.output and "bot token's own workspace" in result.output
